"""The request on the wire is the request that was signed: names holding ( ) ! * ' = & ; @ : $ , # ? % +,
spaces, unicode and a tab, over every request kind, through tests/strictfront.py (which checks SigV4 over
the raw request target, as garage and other S3-compatible servers do), and through Azurite (which checks
SharedKey over the raw path). Also: each of the front's other modes is shown to reject or transform."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import struct
import uuid
import zlib
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from botocore.exceptions import ClientError
from s3util import run
from strictfront import KMS_KEY_ID, StrictFront, crc64nvme, rfc3986_path

MiB = 1024 * 1024
ODD = "( ) ! * ' = & ; @ : $ , # ? % + é 日本\t"
SMALL = {
    "photo (1).jpg": 1000,
    "a!b*c'd=e&f;g@h:i$j,k.png": 3000,
    "hash#q?x=1%25+plus sign.txt": 10,
    "ünïcødé 日本/(dir) & more/x;y@z.bin": 70_000,
    "tab\there.txt": 5,
    f"all {ODD}.dat": 200_000,
    f"dir {ODD}/inner {ODD}.json": 4096,
    "empty ( ).txt": 0,
}
LARGE = {f"big {ODD}.bin": 11 * MiB, "d & @:$,/big two (2)+.bin": 6 * MiB}
PREFIX = "m (1)!*'=&;@:$,+ é"
PARTS = ("--multipart-threshold", "5MiB", "--chunk-size", "5MiB")


def _client(endpoint: str, **config):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                        region_name="us-east-1", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config))


@pytest.fixture
def front(moto_server):
    with StrictFront(moto_server.endpoint_url, sigv4=True, content_md5=True, checksums=True) as proxy:
        yield proxy


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "media"
    for rel, size in {**SMALL, **LARGE}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = hashlib.sha256(rel.encode()).digest()
        path.write_bytes((seed * (size // 32 + 1))[:size])
    return root


@pytest.fixture
def other_bucket(s3_bucket):
    name = f"copy-{uuid.uuid4().hex[:12]}"
    client = s3_bucket.client()
    client.create_bucket(Bucket=name)
    yield name
    for item in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


def _objects(client, bucket: str, prefix: str) -> dict[str, bytes]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix):]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def _kind(seen) -> str:
    path, _, query = seen.target.partition("?")
    names = {p.partition("=")[0] for p in query.split("&") if p}
    lean = "aiohttp" in (seen.header("User-Agent") or "")
    if seen.method == "PUT" and seen.header("x-amz-copy-source"):
        return "copy"
    if seen.method == "PUT" and "partNumber" in names:
        return "part"
    if seen.method == "PUT":
        return "fast put" if lean else "put"
    if seen.method == "POST":
        return "create" if "uploads" in names else "complete" if "uploadId" in names else f"post {sorted(names)}"
    if seen.method == "GET" and "list-type" in names:
        return "lean list" if lean else "list"
    return seen.method


def _assert_sent_as_signed(front) -> set[str]:
    seen = front.requests
    assert seen, "nothing went through the front"
    assert not front.mismatches, f"sent in another form than signed (sent, signed): {front.mismatches[:5]}"
    assert not front.rejected, [(s.method, s.target, s.error) for s in front.rejected[:5]]
    for s in seen:
        assert s.signed_target == s.target, s
        path = s.target.partition("?")[0]
        assert rfc3986_path(path) == path, f"{path} is not in RFC 3986 form"
    return {_kind(s) for s in seen}


def test_every_request_kind_goes_out_as_signed(s3_env, s3_bucket, other_bucket, front, tree):
    files = {rel: (tree / rel).read_bytes() for rel in {**SMALL, **LARGE}}
    src, dst = f"{s3_bucket.url}/{PREFIX}", f"s3://{other_bucket}/r"  # the listings' prefix is odd too
    ends = ("--endpoint-url", front.endpoint_url)

    first = run("copy", str(tree), src, *ends, *PARTS, "--json")
    kinds = _assert_sent_as_signed(front)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["copied"] == len(files)
    assert {"fast put", "create", "part", "complete"} <= kinds, kinds
    assert any(quote(f"big {ODD}.bin", safe="") in s.target for s in front.requests if _kind(s) == "part")
    fast = [s for s in front.requests if _kind(s) == "fast put"]
    assert len(fast) == len(SMALL)
    assert _objects(s3_bucket.client(), s3_bucket.name, f"{PREFIX}/") == files

    front.clear()
    again = run("copy", str(tree), src, *ends, *PARTS, "--json", "--state", str(tree.parent / "fresh.sqlite3"))
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["copied"] == 0
    assert "lean list" in _assert_sent_as_signed(front)

    front.clear()
    verify = run("verify", str(tree), src, *ends, "--chunk-size", "5MiB", "--download", "--json")
    assert verify.exit_code == 0, verify.output
    kinds = _assert_sent_as_signed(front)
    assert "GET" in kinds, kinds

    # HEAD: under SSE-KMS a listed ETag is no MD5, so verify asks each object (its md5chksum metadata).
    with StrictFront(front.backend_url, sigv4=True, kms=True) as kms:
        verify = run("verify", str(tree), src, "--endpoint-url", kms.endpoint_url, "--chunk-size", "5MiB", "--json")
        kinds = _assert_sent_as_signed(kms)
    counts = json.loads(verify.stdout)["counts"]  # only the uploader's md5chksum matches: "unchecked" is right
    assert not {"missing", "different", "extra"} & set(counts), verify.output
    assert "HEAD" in kinds, kinds

    front.clear()
    sync = run("sync", src, dst, *ends, "--src-endpoint-url", front.endpoint_url, *PARTS, "--json")
    assert sync.exit_code == 0, sync.output
    assert "copy" in _assert_sent_as_signed(front)
    copies = [s.header("x-amz-copy-source") for s in front.requests if _kind(s) == "copy"]
    assert len(copies) == len(files) and any("%28" in c for c in copies)
    assert _objects(s3_bucket.client(), other_bucket, "r/") == files

    gone = f"all {ODD}.dat"
    s3_bucket.client().delete_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/{gone}")  # straight to moto
    front.clear()
    pruned = run("sync", src, dst, *ends, "--src-endpoint-url", front.endpoint_url, *PARTS, "--delete", "--json")
    assert pruned.exit_code == 0, pruned.output
    assert "DELETE" in _assert_sent_as_signed(front)
    assert _objects(s3_bucket.client(), other_bucket, "r/") == {k: v for k, v in files.items() if k != gone}

def _signed(method: str, url: str, body: bytes = b"") -> dict[str, str]:
    """botocore's own SigV4 headers for this request (path as given, already percent-encoded)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body)
    S3SigV4Auth(Credentials("testing", "testing"), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _send(endpoint: str, method: str, target: str, headers: dict[str, str], body: bytes = b""):
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_front_rejects_a_target_sent_in_another_form_than_signed(s3_bucket, moto_server):
    with StrictFront(moto_server.endpoint_url, sigv4=True) as front:
        good = f"/{s3_bucket.name}/photo%20%281%29.jpg"
        bad = f"/{s3_bucket.name}/photo%20(1).jpg"  # what aiohttp makes of a string URL
        headers = _signed("PUT", front.endpoint_url + good, b"data")
        status, body = _send(front.endpoint_url, "PUT", bad, headers, b"data")
        assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
        assert front.mismatches == [(bad, good)]
        assert _send(moto_server.endpoint_url, "PUT", bad, headers, b"data")[0] == 200  # moto never notices

        assert _send(front.endpoint_url, "PUT", good, headers, b"data")[0] == 200
        wrong_key = _signed("PUT", front.endpoint_url + good, b"data")
        wrong_key["Authorization"] = wrong_key["Authorization"][:-4] + "0000"
        assert _send(front.endpoint_url, "PUT", good, wrong_key, b"data")[0] == 403
        assert front.mismatches[-1] == (good, None)
        tampered = _signed("PUT", front.endpoint_url + good, b"data")
        status, body = _send(front.endpoint_url, "PUT", good, tampered, b"other")
        assert status == 400 and b"XAmzContentSHA256Mismatch" in body


def test_lean_put_url_is_sent_as_built():
    """The fast path's URL object keeps the percent-encoding it was signed with (a string would not)."""
    import yarl

    from lsmigrate.stores.s3.lean_put import _url

    for key in (quote(f"x/{ODD}.jpg", safe="/~"), "a/../b", "./c//d"):  # a string also drops dot segments
        assert _url("http://127.0.0.1:9/bkt/", key).raw_path == f"/bkt/{key}"
        assert yarl.URL(f"http://127.0.0.1:9/bkt/{key}").raw_path != f"/bkt/{key}"  # the bug


def test_content_md5_mode_rejects_a_wrong_digest(s3_bucket, moto_server):
    wrong = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    moto = _client(moto_server.endpoint_url, request_checksum_calculation="when_required")
    moto.put_object(Bucket=s3_bucket.name, Key="k", Body=b"data", ContentMD5=wrong)  # moto takes it
    with StrictFront(moto_server.endpoint_url, content_md5=True) as front:
        client = _client(front.endpoint_url, request_checksum_calculation="when_required")
        with pytest.raises(ClientError, match="BadDigest"):
            client.put_object(Bucket=s3_bucket.name, Key="k (1)", Body=b"data", ContentMD5=wrong)
        upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key="k (2)")["UploadId"]
        with pytest.raises(ClientError, match="BadDigest"):
            client.upload_part(Bucket=s3_bucket.name, Key="k (2)", UploadId=upload, PartNumber=1, Body=b"data",
                               ContentMD5=wrong)
        with pytest.raises(ClientError, match="InvalidDigest"):
            client.put_object(Bucket=s3_bucket.name, Key="k (1)", Body=b"data", ContentMD5="bm90IGFuIG1kNQ==")
        right = base64.b64encode(hashlib.md5(b"data").digest()).decode()
        client.put_object(Bucket=s3_bucket.name, Key="k (1)", Body=b"data", ContentMD5=right)
        assert [s.error for s in front.requests if s.error] == ["BadDigest", "BadDigest", "InvalidDigest"]


def test_checksums_mode_rejects_a_wrong_checksum(s3_bucket, moto_server):
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    bucket, data = s3_bucket.name, b"checksummed data"
    wrong_crc32 = b64(struct.pack(">I", zlib.crc32(b"else")))
    _client(moto_server.endpoint_url).put_object(Bucket=bucket, Key="k", Body=data, ChecksumCRC32=wrong_crc32)
    assert crc64nvme(b"123456789") == 0xAE8B14860A799888  # the CRC-64/NVME check value
    with StrictFront(moto_server.endpoint_url, checksums=True) as front:
        client = _client(front.endpoint_url)
        client.put_object(Bucket=bucket, Key="auto", Body=data)  # botocore's own CRC32
        assert front.requests[-1].header("x-amz-checksum-crc32") and front.requests[-1].status == 200
        wrong = {"ChecksumCRC32": wrong_crc32, "ChecksumCRC32C": b64(b"\0\0\0\0"), "ChecksumSHA1": b64(bytes(20)),
                 "ChecksumSHA256": b64(bytes(32)), "ChecksumCRC64NVME": b64(bytes(8))}
        for name, value in wrong.items():
            with pytest.raises(ClientError, match="BadDigest"):
                client.put_object(Bucket=bucket, Key=f"k {name}", Body=data, **{name: value})
        with pytest.raises(ClientError, match="InvalidRequest"):
            client.put_object(Bucket=bucket, Key="k", Body=data, ChecksumCRC32="AAA")
        import google_crc32c

        right = {"ChecksumCRC32C": b64(struct.pack(">I", google_crc32c.value(data))),
                 "ChecksumSHA256": b64(hashlib.sha256(data).digest()),
                 "ChecksumCRC64NVME": b64(struct.pack(">Q", crc64nvme(data)))}
        for name, value in right.items():
            client.put_object(Bucket=bucket, Key=f"ok {name}", Body=data, **{name: value})
        assert len(front.rejected) == len(wrong) + 1


def test_kms_mode_answers_opaque_etags_and_the_encryption_header(s3_bucket, moto_server):
    bucket, data = s3_bucket.name, b"encrypted at rest"
    with StrictFront(moto_server.endpoint_url, kms=True) as front:
        client = _client(front.endpoint_url)
        put = client.put_object(Bucket=bucket, Key="k (1)", Body=data)
        etag = put["ETag"].strip('"')
        assert etag != hashlib.md5(data).hexdigest()
        assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == KMS_KEY_ID
        head = client.head_object(Bucket=bucket, Key="k (1)")
        assert head["ETag"].strip('"') == etag and head["ServerSideEncryption"] == "aws:kms"
        got = client.get_object(Bucket=bucket, Key="k (1)")
        assert got["Body"].read() == data and got["ETag"].strip('"') == etag
        listed = client.list_objects_v2(Bucket=bucket)["Contents"]
        assert [o["ETag"].strip('"') for o in listed] == [etag]
        copied = client.copy_object(Bucket=bucket, Key="k (2)", CopySource={"Bucket": bucket, "Key": "k (1)"})
        assert copied["CopyObjectResult"]["ETag"].strip('"') == etag and copied["ServerSideEncryption"] == "aws:kms"

        upload = client.create_multipart_upload(Bucket=bucket, Key="big (3)")
        assert upload["ServerSideEncryption"] == "aws:kms"
        parts = []
        for number in (1, 2):
            part = client.upload_part(Bucket=bucket, Key="big (3)", UploadId=upload["UploadId"], PartNumber=number,
                                      Body=bytes([number]) * (5 * MiB if number == 1 else 10))
            assert part["ServerSideEncryption"] == "aws:kms"
            parts.append({"PartNumber": number, "ETag": part["ETag"]})
        assert parts[0]["ETag"].strip('"') != hashlib.md5(b"\x01" * 5 * MiB).hexdigest()
        listed_parts = client.list_parts(Bucket=bucket, Key="big (3)", UploadId=upload["UploadId"])["Parts"]
        assert [p["ETag"] for p in listed_parts] == [p["ETag"] for p in parts]
        done = client.complete_multipart_upload(Bucket=bucket, Key="big (3)", UploadId=upload["UploadId"],
                                                MultipartUpload={"Parts": parts})  # opaque ETags mapped back
        md5s = hashlib.md5(hashlib.md5(b"\x01" * 5 * MiB).digest() + hashlib.md5(b"\x02" * 10).digest())
        assert done["ETag"].strip('"').endswith("-2") and done["ETag"].strip('"') != f"{md5s.hexdigest()}-2"
        assert done["ServerSideEncryption"] == "aws:kms"


def test_sse_c_mode_needs_the_key_and_hides_the_md5(s3_bucket, moto_server):
    key = b"k" * 32
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    with StrictFront(moto_server.endpoint_url, sse_c=True) as front:
        client = _client(front.endpoint_url)
        put = client.put_object(Bucket=s3_bucket.name, Key="c (1)", Body=b"secret", **sse)
        assert put["ETag"].strip('"') != hashlib.md5(b"secret").hexdigest()
        assert put["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(key).digest()).decode()
        with pytest.raises(ClientError, match="400"):
            client.head_object(Bucket=s3_bucket.name, Key="c (1)")
        assert client.head_object(Bucket=s3_bucket.name, Key="c (1)", **sse)["ETag"] == put["ETag"]


def test_azure_odd_names_pass_azurite_shared_key_check(s3_env, azurite, monkeypatch, tree):
    """Azurite checks SharedKey over the raw path (Express's req.path), so a blob name sent in another form
    than signed is refused there with 403 AuthorizationFailure: a clean copy of these names is the proof."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"c{uuid.uuid4().hex[:12]}"
    container = service.create_container(name)
    result = run("copy", str(tree), f"az://{name}/m", *PARTS, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["copied"] == len(SMALL) + len(LARGE)
    for rel in {**SMALL, **LARGE}:  # azure-storage-blob, not adlfs: adlfs cannot read a name with a tab
        assert container.download_blob(f"m/{rel}").readall() == (tree / rel).read_bytes(), rel
    verify = run("verify", str(tree), f"az://{name}/m", "--download", "--json")
    assert verify.exit_code == 0, verify.output
