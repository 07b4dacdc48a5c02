"""The Store interface's promises, held against the in-memory store and the real S3 store on moto alike,
so the memory store the engine tests run on is shown faithful, not assumed. Only what both must agree on;
the memory store's own extras (Content-MD5 checked as S3 and rclone check it, moto does not; its fault
hooks) are at the end, on it alone."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import pytest

from lsmigrate import basis
from lsmigrate.checksum import multipart_etag
from lsmigrate.endpoints import open_store, parse_url, with_overrides
from lsmigrate.stores.base import StoreError
from lsmigrate.stores.errors import BucketNotFound, ChecksumMismatch, Gone, NotFound
from lsmigrate.stores.memory import MemoryServer, MemoryStore

MiB = 1024 * 1024
BUCKET = "contract"
NAMES = ["b.txt", "a b.png", "a-b.txt", "a/b.txt", "ünï 日本.jpg", "empty.txt", "z/deep/er.bin"]


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def body(name: str) -> bytes:
    return b"" if name == "empty.txt" else hashlib.sha256(name.encode()).digest() * 3


@pytest.fixture(params=["memory", "s3"])
def make_store(request):
    """make_store(folder="f", bucket=None) -> a store of the backend under test; all share one bucket."""
    opened = []
    if request.param == "memory":
        server = MemoryServer((BUCKET,))

        def make(folder: str = "f", bucket: str | None = None):
            return MemoryStore(server, bucket or BUCKET, folder)
    else:
        request.getfixturevalue("s3_env")
        s3 = request.getfixturevalue("s3_bucket")

        def make(folder: str = "f", bucket: str | None = None):
            return open_store(with_overrides(parse_url(f"s3://{bucket or s3.name}/{folder}"),
                                             endpoint_url=s3.endpoint_url))

    def opening(*args, **kwargs):
        opened.append(make(*args, **kwargs))
        return opened[-1]

    yield opening
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store):
    return make_store()


def put(store, rel: str, data: bytes):
    return store.put(rel, data, md5(data))


def multipart(store, rel: str, parts: list[bytes]):
    """Start, send every part, complete: (session, part tokens, receipt)."""
    whole = b"".join(parts)
    session = store.start_upload(rel, md5(whole), len(whole))
    tokens = [store.put_part(rel, session, n, data, md5(data), offset=sum(map(len, parts[:n - 1])), size=len(whole))
              for n, data in enumerate(parts, 1)]
    return session, tokens, store.complete(rel, session, list(enumerate(tokens, 1)), md5(whole))


def test_both_declare_the_same_capabilities(store):
    assert (store.md5_basis, store.multipart_etags, store.part_views) == (basis.ETAG, True, True)
    assert (store.min_part_size, store.max_parts, store.part_granule, store.max_key_bytes) == (5 * MiB, 10_000, 1, 1024)
    assert (store.parallel_parts, store.trust_listed_parts) == (True, False)


def test_a_new_folder_lists_nothing_and_heads_nothing(store):
    store.check()
    assert list(store.list()) == []
    assert store.head("nothing.txt") is None


def test_whole_puts_answer_the_md5_and_list_in_key_order_with_sizes_and_etags(make_store, store):
    started = time.time()
    for name in reversed(NAMES):
        receipt = put(store, name, body(name))
        assert receipt.token == receipt.checksum == md5(body(name)).hex() == store.expected_token(md5(body(name)), None)
        assert receipt.basis == basis.ETAG
    put(store, "folder/", b"")  # a folder marker, not a file
    put(make_store("g"), "beside.txt", b"another folder")
    put(make_store("f-sibling"), "beside.txt", b"a folder whose name starts alike")
    listed = list(store.list())
    assert [o.rel for o in listed] == sorted(NAMES, key=lambda n: n.encode())
    for entry in listed:
        assert (entry.size, entry.etag, entry.md5) == (len(body(entry.rel)),) + (md5(body(entry.rel)).hex(),) * 2
        assert started - 2 <= entry.mtime <= time.time() + 2 and entry.client_md5 is None


def test_head_shows_the_uploaders_md5_apart_from_the_servers(store):
    put(store, "a.txt", b"hello")
    head = store.head("a.txt")
    assert (head.rel, head.size, head.etag, head.md5) == ("a.txt", 5, md5(b"hello").hex(), md5(b"hello").hex())
    assert head.client_md5 == md5(b"hello").hex()


def test_a_put_replaces_the_object(store):
    put(store, "a.txt", b"first")
    put(store, "a.txt", b"second, longer")
    assert store.head("a.txt").etag == md5(b"second, longer").hex()
    assert [(o.rel, o.size) for o in store.list()] == [("a.txt", 14)]


def test_put_async_on_the_stores_loop_answers_as_put_does(store):
    loop = store.event_loop()
    receipt = asyncio.run_coroutine_threadsafe(store.put_async("a.txt", b"async", md5(b"async")), loop).result(30)
    assert (receipt.token, receipt.basis, receipt.checksum) == (md5(b"async").hex(), basis.ETAG, md5(b"async").hex())
    assert store.read_range("a.txt", 0, 5) == b"async"


def test_ranges_read_back_what_was_put(store):
    put(store, "a.txt", b"0123456789")
    assert store.read_range("a.txt", 2, 3) == b"234"
    assert store.read_range("a.txt", 8, 10) == b"89"  # a range past the end gives what there is
    assert store.read_range("a.txt", 0, 0) == b""
    assert store.open("a.txt").read() == b"0123456789"
    for rel, start, kind in (("missing.txt", 0, NotFound), ("a.txt", 10, StoreError)):  # NoSuchKey, InvalidRange
        with pytest.raises(StoreError) as failed:
            store.read_range(rel, start, 1)
        assert type(failed.value) is kind and not (failed.value.fatal or failed.value.resend)


def test_a_multipart_upload_shows_its_parts_and_completes_with_the_multipart_etag(store):
    parts = [os.urandom(5 * MiB), b"the short last part"]
    whole = b"".join(parts)
    session = store.start_upload("big.bin", md5(whole), len(whole))
    first = store.put_part("big.bin", session, 1, bytearray(parts[0]), md5(parts[0]), offset=0, size=len(whole))
    assert first == store.part_token(md5(parts[0])) == md5(parts[0]).hex()
    assert store.uploaded_parts("big.bin", session, size=len(whole), part_size=5 * MiB) == {1: first}
    assert list(store.list()) == [] and store.head("big.bin") is None  # nothing to see before completion
    second = store.put_part("big.bin", session, 2, parts[1], md5(parts[1]), offset=5 * MiB, size=len(whole))
    receipt = store.complete("big.bin", session, [(1, first), (2, second)], md5(whole))
    expected = multipart_etag([md5(parts[0]), md5(parts[1])])
    assert (receipt.token, receipt.basis, receipt.checksum) == (expected, basis.MULTIPART_ETAG, expected)
    assert expected == store.expected_token(md5(whole), [md5(p) for p in parts])
    assert [(o.rel, o.size, o.etag, o.md5) for o in store.list()] == [("big.bin", len(whole), expected, None)]
    head = store.head("big.bin")
    assert (head.etag, head.md5, head.client_md5) == (expected, None, md5(whole).hex())
    assert store.read_range("big.bin", 5 * MiB - 2, 6) == parts[0][-2:] + parts[1][:4]
    assert store.uploaded_parts("big.bin", session) is None  # the session ended with the object


def test_completion_refuses_what_s3_refuses_and_the_session_stays(store):
    small, last = b"s" * 1000, b"last"
    session = store.start_upload("big.bin", md5(small + last), len(small + last))
    tokens = [store.put_part("big.bin", session, n, data, md5(data)) for n, data in ((1, small), (2, last))]
    for parts in ([(1, "0" * 32)],  # not that part's ETag
                  [],  # no part
                  [(2, tokens[1]), (1, tokens[0])],  # out of order
                  [(1, tokens[0]), (2, tokens[1])]):  # a part but the last under 5 MiB
        with pytest.raises(StoreError) as failed:
            store.complete("big.bin", session, parts, md5(small + last))
        assert type(failed.value) is StoreError and not (failed.value.fatal or failed.value.resend), parts
    assert store.uploaded_parts("big.bin", session) == {1: tokens[0], 2: tokens[1]}
    assert store.complete("big.bin", session, [(2, tokens[1])], md5(last)).token == multipart_etag([md5(last)])
    assert store.read_range("big.bin", 0, 100) == last  # the parts named, no others


def test_abort_ends_a_session_and_is_quiet_about_one_already_gone(store):
    session = store.start_upload("big.bin", md5(b"x"), 1)
    store.put_part("big.bin", session, 1, b"x", md5(b"x"))
    store.abort("big.bin", session)
    assert store.uploaded_parts("big.bin", session) is None
    store.abort("big.bin", session)
    assert store.uploaded_parts("big.bin", "no-such-session") is None
    assert list(store.list()) == []


def test_delete_removes_one_object_and_is_quiet_about_a_missing_one(store):
    put(store, "a.txt", b"a")
    put(store, "b.txt", b"b")
    store.delete("a.txt")
    store.delete("never-there.txt")
    assert store.head("a.txt") is None and [o.rel for o in store.list()] == ["b.txt"]


def test_a_missing_bucket_is_fatal_but_a_head_says_only_none(make_store):
    store = make_store(bucket="no-such-bucket-contract")
    for call in (store.check, lambda: list(store.list()), lambda: put(store, "a.txt", b"a"),
                 lambda: store.start_upload("a.txt", md5(b"a"), 1), lambda: store.read_range("a.txt", 0, 1)):
        with pytest.raises(StoreError) as failed:
            call()
        assert type(failed.value) is BucketNotFound and failed.value.fatal
    assert store.head("a.txt") is None  # S3 answers a HEAD with a bare 404 either way


def test_a_server_side_copy_keeps_bytes_and_metadata(make_store, store):
    other = make_store("g")
    session, tokens, receipt = multipart(store, "big.bin", [b"m" * (5 * MiB), b"tail"])
    put(store, "small.txt", b"small")
    assert other.can_copy_from(store, 5 * MiB + 4)
    for rel in ("big.bin", "small.txt"):
        data = store.open(rel).read()
        copied = other.copy_from(store, rel)
        assert (copied.token, copied.basis, copied.checksum) == (md5(data).hex(), basis.ETAG, md5(data).hex())
        assert other.open(rel).read() == data and other.head(rel).client_md5 == md5(data).hex()
    with pytest.raises(StoreError) as failed:
        other.copy_from(store, "missing.txt")
    assert type(failed.value) is NotFound and not (failed.value.fatal or failed.value.resend)


# The memory store alone: what S3 and rclone serve s3 check but moto does not, and the fault hooks.
def test_memory_store_checks_content_md5_as_s3_does():
    store = MemoryStore()
    with pytest.raises(StoreError) as failed:
        store.put("a.txt", b"sent", md5(b"hashed"))
    assert type(failed.value) is ChecksumMismatch and failed.value.resend and store.head("a.txt") is None
    session = store.start_upload("big.bin", md5(b"x"), 1)
    with pytest.raises(StoreError) as failed:
        store.put_part("big.bin", session, 1, b"sent", md5(b"hashed"))
    assert type(failed.value) is ChecksumMismatch and store.uploaded_parts("big.bin", session) == {}


def test_memory_store_keeps_the_content_type_and_the_uploaders_md5_as_s3_does():
    store = MemoryStore(min_part_size=1)
    store.put("a.jpg", b"jpeg", md5(b"jpeg"))
    session = store.start_upload("b.json", md5(b"{}"), 2)
    store.complete("b.json", session, [(1, store.put_part("b.json", session, 1, b"{}", md5(b"{}")))], md5(b"{}"))
    objects = store.server.buckets["bucket"]
    assert (objects["a.jpg"].content_type, objects["b.json"].content_type) == ("image/jpeg", "application/json")
    assert (objects["a.jpg"].client_md5, objects["b.json"].client_md5) == (md5(b"jpeg").hex(), md5(b"{}").hex())


def test_memory_store_answers_a_vanished_session_as_gone():
    # On S3 this is NoSuchUpload (Gone, as tests/test_store_errors.py shows), but moto cannot show it here:
    # after an abort it answers UploadPart and CompleteMultipartUpload with a 500, which botocore retries for
    # about 25 s before it becomes a plain StoreError. So the memory store alone is held to it.
    store = MemoryStore()
    session = store.start_upload("big.bin", md5(b"x"), 1)
    assert store.uploaded_parts("other.bin", session) is None  # another key's session is none of this one
    store.abort("big.bin", session)
    for call in (lambda: store.put_part("big.bin", session, 1, b"x", md5(b"x")),
                 lambda: store.complete("big.bin", session, [(1, md5(b"x").hex())], md5(b"x"))):
        with pytest.raises(StoreError) as failed:
            call()
        assert type(failed.value) is Gone and failed.value.resend


def test_memory_store_keeps_no_reference_to_a_part_buffer():
    store = MemoryStore(min_part_size=4)
    buffer = bytearray(b"abcd")
    session = store.start_upload("big.bin", md5(b"abcdefgh"), 8)
    first = store.put_part("big.bin", session, 1, memoryview(buffer), md5(b"abcd"))
    buffer[:] = b"efgh"  # the engine reuses its buffer for the next part
    second = store.put_part("big.bin", session, 2, memoryview(buffer), md5(b"efgh"))
    store.complete("big.bin", session, [(1, first), (2, second)], md5(b"abcdefgh"))
    assert store.read_range("big.bin", 0, 8) == b"abcdefgh"


def test_memory_faults_fire_on_the_nth_request_of_their_kind_only():
    store = MemoryStore()
    server = store.server
    server.inject("put", error=StoreError("throttled", resend=True), nth=2, times=2, rel="a.txt")
    put(store, "a.txt", b"1")
    put(store, "b.txt", b"other files are not meant")
    for _ in range(2):
        with pytest.raises(StoreError, match="throttled") as failed:
            put(store, "a.txt", b"2")
        assert failed.value.resend
    put(store, "a.txt", b"3")
    assert store.read_range("a.txt", 0, 1) == b"3"
    assert server.count("put") == 5 and server.count("put", "a.txt") == 4 and server.count("read_range") == 1


def test_memory_corruption_keeps_other_bytes_and_answers_for_them():
    store = MemoryStore(min_part_size=1)
    store.server.inject("put", corrupt=True)
    receipt = put(store, "a.txt", b"hello")
    assert receipt.checksum != store.expected_token(md5(b"hello"), None)
    assert receipt.checksum == store.head("a.txt").md5 == md5(store.read_range("a.txt", 0, 5)).hex()
    store.server.inject("put_part", corrupt=True, nth=2)
    session = store.start_upload("big.bin", md5(b"abcd"), 4)
    assert store.put_part("big.bin", session, 1, b"ab", md5(b"ab")) == store.part_token(md5(b"ab"))
    assert store.put_part("big.bin", session, 2, b"cd", md5(b"cd")) != store.part_token(md5(b"cd"))


def test_memory_drop_part_and_open_uploads():
    store = MemoryStore(min_part_size=1)
    session = store.start_upload("big.bin", md5(b"abcd"), 4)
    for n, data in ((1, b"ab"), (2, b"cd")):
        store.put_part("big.bin", session, n, data, md5(data))
    assert store.server.open_uploads() == [("big.bin", session)]
    store.server.drop_part(session, 1)
    assert store.uploaded_parts("big.bin", session) == {2: md5(b"cd").hex()}
    store.abort("big.bin", session)
    assert store.server.open_uploads() == []


def test_memory_listing_comes_a_page_at_a_time_and_is_no_snapshot():
    store = MemoryStore()
    for i in range(2100):
        store.put(f"many/{i:05d}.bin", b"", md5(b""))
    listing = store.list()
    first = [next(listing).rel for _ in range(1000)]
    store.put("many/00000-behind-the-cursor.bin", b"", md5(b""))
    store.put("many/zzz-ahead-of-it.bin", b"", md5(b""))
    rest = [entry.rel for entry in listing]
    assert first + rest == [f"many/{i:05d}.bin" for i in range(2100)] + ["many/zzz-ahead-of-it.bin"]
    assert store.server.count("list") == 3
