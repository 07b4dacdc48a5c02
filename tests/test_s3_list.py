"""The S3 listing lsmigrate plans from (its own ListObjectsV2 reader), against real servers: every key, in
order, with names botocore would decode the same way, over several pages; botocore takes over a page
the lean path cannot read."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from lsmigrate.endpoints import open_store
from lsmigrate.jobs import resolve_target
from lsmigrate.stores.s3 import lean_list as s3_list
from lsmigrate.stores.s3.lean_list import Unsupported, parse_page

ODD = ["a b+c#d?e%20f.txt", "ünï 😀/名前.png", "100%.txt", "q=1&r=2;s<t>.txt", "tab\there.txt", "-lead.txt",
       "plus+only.txt", "%2B.txt", "~tilde'quote\".txt", "a/b/c/deep.txt"]
MANY = [f"many/{i:05d}.bin" for i in range(2100)]  # three pages of 1,000


def _boto_listing(client, bucket: str) -> list[tuple[str, int, str]]:
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="x/"):
        out += [(o["Key"][2:], o["Size"], o["ETag"].strip('"')) for o in page.get("Contents", ())
                if not o["Key"].endswith("/")]
    return out


@pytest.fixture(scope="module", params=["moto", "rclone"])
def listed_bucket(request):
    """(endpoint, bucket, boto3 client) with ODD and MANY below x/, a folder marker, and keys beside x/."""
    import boto3

    if request.param == "moto":
        endpoint = request.getfixturevalue("moto_server").endpoint_url
    else:
        server = request.getfixturevalue("rclone_s3")
        endpoint = server.endpoint_url
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    name = f"list-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    keys = [f"x/{name}" for name in ODD + MANY] + ["x/folder/", "xother/not-below.txt", "x-beside.txt"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=name, Key=key, Body=key.encode()), keys))
    return endpoint, name, client


@pytest.fixture
def filled(listed_bucket, s3_env):
    return listed_bucket


def _store(endpoint: str, bucket: str):
    return open_store(resolve_target(url=f"s3://{bucket}/x", endpoint_url=endpoint))


def _botocore_calls(store) -> list[str]:
    calls: list[str] = []
    real = store._call

    async def spy(method, **kwargs):
        calls.append(method)
        return await real(method, **kwargs)

    store._call = spy
    return calls


def _list_counting_botocore(endpoint: str, bucket: str):
    """The store's listing, and the botocore calls it made on the way."""
    store = _store(endpoint, bucket)
    try:
        calls = _botocore_calls(store)
        return list(store.list()), calls
    finally:
        store.close()


def test_lean_listing_matches_botocore_over_pages_and_odd_names(filled):
    endpoint, bucket, client = filled
    listed, calls = _list_counting_botocore(endpoint, bucket)
    assert calls == []  # every page came through the lean path
    assert [(o.rel, o.size, o.etag) for o in listed] == _boto_listing(client, bucket)
    rels = [o.rel for o in listed]
    assert set(ODD + MANY) <= set(rels) and len(rels) <= len(ODD) + len(MANY) + 1  # rclone: `folder` is a file
    assert rels == sorted(rels, key=lambda rel: rel.encode())
    assert all(o.mtime and o.mtime > 1e9 for o in listed)


def test_a_page_the_lean_path_cannot_read_goes_through_botocore(filled, monkeypatch):
    endpoint, bucket, client = filled
    real = s3_list.LeanList.page
    seen = []

    async def second_page_fails(self, prefix, token, max_keys=1000):
        seen.append(token)
        if len(seen) == 2:
            raise Unsupported("HTTP 503")
        return await real(self, prefix, token, max_keys)

    monkeypatch.setattr(s3_list.LeanList, "page", second_page_fails)
    listed, calls = _list_counting_botocore(endpoint, bucket)
    assert calls == ["list_objects_v2"]
    assert [(o.rel, o.size, o.etag) for o in listed] == _boto_listing(client, bucket)


def test_stopping_early_leaves_nothing_running(filled):
    endpoint, bucket, _ = filled
    store = _store(endpoint, bucket)
    try:
        first = next(iter(store.list()))
        assert first.rel == sorted(ODD + MANY, key=str.encode)[0]
        assert len(list(store.list())) >= len(ODD) + len(MANY)  # and the store still lists
    finally:
        store.close()


def _page(contents: str, extra: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<IsTruncated>false</IsTruncated>{contents}{extra}</ListBucketResult>").encode()


def test_keys_are_decoded_only_when_the_server_says_it_encoded_them():
    item = ("<Contents><Key>x/a+b%2B%25.txt</Key><Size>3</Size><ETag>&quot;abc&quot;</ETag>"
            "<LastModified>2024-05-06T07:08:09.500Z</LastModified></Contents>")
    entries, token = parse_page(_page(item, "<EncodingType>url</EncodingType>"))
    assert entries == [("x/a b+%.txt", 3, "abc", 1714979289.5)] and token is None
    entries, _ = parse_page(_page(item))
    assert entries[0][0] == "x/a+b%2B%25.txt"


@pytest.mark.parametrize("body", [b"<Error><Code>SlowDown</Code></Error>", b"not xml",
                                  _page("<Contents><Size>1</Size></Contents>"),
                                  _page("").replace(b"false", b"true")])
def test_answers_the_parser_does_not_understand_are_left_to_botocore(body):
    with pytest.raises(Unsupported):
        parse_page(body)
