"""AzureStore against a real Azurite blob service: the Store API, error translation, and the engine on top."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from lsdata import make_data_dir

adlfs = pytest.importorskip("adlfs")
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas  # noqa: E402

from lsmigrate.checksum import digest_file  # noqa: E402
from lsmigrate.engine.scheduling import Engine  # noqa: E402
from lsmigrate.engine.sizes import Settings, part_size_for  # noqa: E402
from lsmigrate.journal import Journal  # noqa: E402
from lsmigrate.origins import LocalOrigin  # noqa: E402
from lsmigrate.plan import plan  # noqa: E402
from lsmigrate.scan import LocalFile, RemoteObject, scan_local  # noqa: E402
from lsmigrate.stores.azure.store import AzureStore, in_code_point_order  # noqa: E402
from lsmigrate.stores.base import Receipt, StoreError  # noqa: E402
from lsmigrate.target import Target  # noqa: E402

MiB = 1024 * 1024
FOLDER = "lsdata"


@pytest.fixture(scope="module")
def service(azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture(scope="module")
def fs(azurite):
    return adlfs.AzureBlobFileSystem(connection_string=azurite.connection_string, skip_instance_cache=True)


@pytest.fixture
def container(service) -> str:
    name = f"t-{uuid.uuid4().hex[:16]}"
    service.create_container(name)
    return name


def make_store(fs, connection_string: str, container: str, folder: str = FOLDER) -> AzureStore:
    target = Target(provider="azure", bucket=container, folder=folder, connection_string=connection_string)
    return AzureStore(target, fs)


@pytest.fixture
def store(fs, azurite, container) -> Iterator[AzureStore]:
    store = make_store(fs, azurite.connection_string, container)
    yield store
    store.close()


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def blob_bytes(service, container: str, key: str) -> bytes:
    return service.get_blob_client(container, key).download_blob().readall()


ODD = [
    "upload/1/ab12cd34-my photo 01.jpg",
    "upload/1/café.jpg",
    "upload/1/日本語のファイル.png",
    "upload/1/😀 emoji.png",
    "upload/1/ｆullwidth.png",  # U+FF46: Azurite lists it after the emoji (UTF-16 order), Python before
    "upload/1/hash#1.txt",
    "upload/1/what?.txt",
    "upload/1/100% done.txt",
    "upload/1/a+b.json",
    "upload/1/literal%20space.jpg",
    "upload/1/empty.txt",
    "upload/1-x",
    "avatars/x.png",
]


def test_put_list_head_open_round_trip_with_odd_names(store, service, container):
    store.check()
    payloads = {rel: (b"" if "empty" in rel else f"content of {rel}".encode() * 50) for rel in ODD}
    for rel, data in payloads.items():
        # Put Blob: the service computed the blob's MD5 itself (no whole-blob MD5 is sent to be stored)
        assert store.put(rel, data, md5(data)) == Receipt(md5(data).hex(), "server-md5", md5(data).hex())

    listed = list(store.list())
    assert [obj.rel for obj in listed] == sorted(payloads)
    for obj in listed:
        data = payloads[obj.rel]
        assert obj.size == len(data) and obj.md5 == md5(data).hex() and obj.etag and obj.mtime
        assert '"' not in obj.etag
        head = store.head(obj.rel)
        assert head is not None and (head.size, head.md5, head.etag) == (obj.size, obj.md5, obj.etag)
        with store.open(obj.rel) as handle:
            assert handle.read() == data
        props = service.get_blob_client(container, f"{FOLDER}/{obj.rel}").get_blob_properties()
        assert bytes(props.content_settings.content_md5) == md5(data)
    jpg = service.get_blob_client(container, f"{FOLDER}/upload/1/café.jpg").get_blob_properties()
    assert jpg.content_settings.content_type == "image/jpeg"
    assert blob_bytes(service, container, f"{FOLDER}/upload/1/what?.txt") == payloads["upload/1/what?.txt"]

    # What Azurite itself answers: UTF-16 code unit order, not Python's (code point) order.
    raw = [b.name[len(FOLDER) + 1:] for b in service.get_container_client(container).list_blobs(name_starts_with=FOLDER)]
    assert raw.index("upload/1/😀 emoji.png") < raw.index("upload/1/ｆullwidth.png")

    assert store.head("upload/1/nothing-here") is None
    store.delete("upload/1/hash#1.txt")
    store.delete("upload/1/hash#1.txt")  # already gone: no error
    assert store.head("upload/1/hash#1.txt") is None
    # A blob next to the folder is not listed (prefix is "lsdata/").
    service.get_blob_client(container, "lsdata-other").upload_blob(b"x")
    assert "upload/1/hash#1.txt" not in {obj.rel for obj in store.list()}
    assert all(not obj.rel.startswith("-other") for obj in store.list())


def test_ranged_reads_cross_block_boundaries(store):
    data = os.urandom(3 * MiB + 17)
    store.put("big.bin", data, md5(data))
    assert store.read_range("big.bin", MiB - 5, 10) == data[MiB - 5:MiB + 5]
    assert store.read_range("big.bin", 0, 0) == b""
    reader = store.open("big.bin")
    reader._block = MiB  # small blocks: several ranged GETs
    got = b""
    while chunk := reader.read(MiB):
        got += chunk
    assert got == data


def test_large_whole_put_goes_as_checked_blocks(store, service, container):
    store._single_put_limit = MiB  # as if the object were above the 64 MiB single-put size
    data = os.urandom(2 * MiB + 5)
    # Put Block List checks no whole-blob MD5: the blocks' own were checked at Put Block.
    assert store.put("big.bin", data, md5(data)) == Receipt(md5(data).hex(), "content-md5", None)
    blob = service.get_blob_client(container, f"{FOLDER}/big.bin")
    assert blob.download_blob().readall() == data
    assert len(blob.get_block_list("committed")[0]) == 3
    assert bytes(blob.get_blob_properties().content_settings.content_md5) == md5(data)


def test_listing_reorder_to_code_point_order():
    names = ["a", "a/😀", "a/😀/x", "a/ｆ", "a/ｆ/y", "b", "c😀", "cｆ", "d"]
    utf16 = sorted(names, key=lambda s: s.encode("utf-16-be"))
    assert utf16 != sorted(names)
    assert [o.rel for o in in_code_point_order(RemoteObject(n, 1) for n in utf16)] == sorted(names)
    assert [o.rel for o in in_code_point_order(RemoteObject(n, 1) for n in sorted(names))] == sorted(names)
    with pytest.raises(StoreError, match="order"):
        list(in_code_point_order(RemoteObject(n, 1) for n in ["b", "a"]))


def test_chunked_upload_through_the_store_api(store, service, container):
    parts = [os.urandom(MiB), os.urandom(MiB), os.urandom(12345)]
    whole = b"".join(parts)
    rel = "upload/2/large video.mp4"
    session = store.start_upload(rel, md5(whole), len(whole))
    other = store.start_upload(rel, md5(whole), len(whole))
    assert session != other and len(session) == 16
    assert store.uploaded_parts(rel, session) == {}  # nothing staged yet: the blob does not exist
    tokens = []
    for number, data in enumerate(parts, start=1):
        token = store.put_part(rel, session, number, data, md5(data))
        assert token == store.part_token(md5(data)) == md5(data).hex()
        tokens.append((number, token))
    assert store.uploaded_parts(rel, session) == {1: None, 2: None, 3: None}
    assert store.uploaded_parts(rel, other) == {}
    assert store.head(rel) is None  # staged blocks are not a blob yet

    receipt = store.complete(rel, session, tokens, md5(whole))
    assert receipt == Receipt(md5(whole).hex(), "content-md5", None)
    assert store.head(rel).md5 is None and store.head(rel).client_md5 == md5(whole).hex()  # ours, not the service's
    key = f"{FOLDER}/{rel}"
    assert blob_bytes(service, container, key) == whole
    props = service.get_blob_client(container, key).get_blob_properties()
    assert bytes(props.content_settings.content_md5) == md5(whole)
    assert props.content_settings.content_type == "video/mp4"
    head = store.head(rel)
    # stored for rclone check, but set by us at the commit: the uploader's MD5, never taken for the service's
    assert head.md5 is None and head.client_md5 == md5(whole).hex() and head.size == len(whole)
    # A run killed after the commit but before the journal update finds the committed blocks of its session.
    assert store.uploaded_parts(rel, session) == {1: None, 2: None, 3: None}
    store.abort(rel, session)  # a no-op, never an error
    store.abort(rel, "0" * 16)


def test_corrupted_part_and_put_are_refused_by_the_service(store):
    rel = "upload/3/x.bin"
    data = os.urandom(MiB)
    session = store.start_upload(rel, md5(data), len(data))
    with pytest.raises(StoreError) as part_error:
        store.put_part(rel, session, 1, data, md5(data[:-1] + b"!"))
    assert part_error.value.digest and not part_error.value.fatal
    assert store.uploaded_parts(rel, session) == {}
    with pytest.raises(StoreError) as put_error:
        store.put(rel, data, md5(b"other bytes"))
    assert put_error.value.digest and not put_error.value.fatal
    assert store.head(rel) is None


def test_missing_container_and_wrong_key_are_fatal_without_secrets(fs, azurite, container):
    missing = make_store(fs, azurite.connection_string, "no-such-container")
    with pytest.raises(StoreError) as exc:
        missing.check()
    assert exc.value.fatal and "container no-such-container does not exist" in str(exc.value)
    with pytest.raises(StoreError) as exc:
        missing.put("a.txt", b"a", md5(b"a"))
    assert exc.value.fatal and "does not exist" in str(exc.value)
    missing.close()

    wrong_key = "A" * 86 + "=="
    bad_conn = azurite.connection_string.replace(azurite.account_key, wrong_key)
    bad_fs = adlfs.AzureBlobFileSystem(connection_string=bad_conn, skip_instance_cache=True)
    bad = make_store(bad_fs, bad_conn, container)
    by_key = AzureStore(Target(provider="azure", bucket=container, account_name=azurite.account_name,
                               account_key=wrong_key, endpoint_url=azurite.blob_endpoint),
                        adlfs.AzureBlobFileSystem(account_name=azurite.account_name, account_key=wrong_key,
                                                  skip_instance_cache=True))
    for store in (bad, by_key):
        for call in (store.check, lambda s=store: list(s.list()), lambda s=store: s.put("a.txt", b"a", md5(b"a"))):
            with pytest.raises(StoreError) as exc:
                call()
            message = str(exc.value)
            assert exc.value.fatal and "credentials were rejected" in message, message
            assert wrong_key not in message and azurite.account_key not in message and "AccountKey" not in message
            assert "\n" not in message
        store.close()


def test_account_key_with_endpoint_override(azurite, container, service):
    """Label Studio's own variables (account name and key) plus an endpoint: adlfs alone would go to
    https://<account>.blob.core.windows.net."""
    target = Target(provider="azure", bucket=container, folder="f", account_name=azurite.account_name,
                    account_key=azurite.account_key, endpoint_url=azurite.blob_endpoint)
    store = AzureStore(target, adlfs.AzureBlobFileSystem(account_name=azurite.account_name,
                                                         account_key=azurite.account_key, skip_instance_cache=True))
    try:
        store.check()
        assert store.put("x.txt", b"x", md5(b"x")).checksum == md5(b"x").hex()
        assert [o.rel for o in store.list()] == ["x.txt"]
        assert blob_bytes(service, container, "f/x.txt") == b"x"
    finally:
        store.close()


def test_missing_permission_is_fatal_access_denied(azurite, container):
    sas = generate_container_sas(azurite.account_name, container, account_key=azurite.account_key,
                                 permission=ContainerSasPermissions(read=True, list=True),
                                 expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    conn = f"BlobEndpoint={azurite.blob_endpoint};SharedAccessSignature={sas}"
    store = make_store(adlfs.AzureBlobFileSystem(connection_string=conn, skip_instance_cache=True), conn, container)
    try:
        store.check()  # read and list are enough for the check
        assert list(store.list()) == []
        with pytest.raises(StoreError) as exc:
            store.put("upload/1/a.txt", b"a", md5(b"a"))
        assert exc.value.fatal and str(exc.value).startswith(f"access denied: PutBlob on az://{container}/lsdata/")
        assert "sig=" not in str(exc.value)
        with pytest.raises(StoreError) as exc:
            store.cors_rules()  # account settings: a container SAS cannot read them
        assert exc.value.fatal and "access denied" in str(exc.value)
    finally:
        store.close()


def test_doctor_extras(store):
    from lsmigrate.doctor import WARN
    from lsmigrate.stores.azure.record import CORS_RULE as AZURE_CORS_RULE

    before = store.cors_rules()
    if not before:
        store.apply_cors(AZURE_CORS_RULE)
    rules = store.cors_rules()
    assert rules and rules[-1]["allowed_methods"] == "GET,PUT,POST,DELETE,HEAD"
    assert rules[-1]["allowed_origins"] == "*" and rules[-1]["max_age_in_seconds"] == 3600
    (check,) = store.doctor_checks()
    assert check.status == WARN and "Standard_RAGRS" in check.detail  # what Azurite says it is


def test_doctor_runs_on_azure(store):
    from lsmigrate.doctor import FAIL, run_checks

    checks = run_checks(store, store.target, apply_cors=True)
    assert [c for c in checks if c.status == FAIL] == []
    names = [c.name for c in checks]
    assert "put under the folder" in names and "storage account type" in names
    assert list(store.list()) == []  # the probe object was removed


class Counting:
    """Counts the requests the engine makes through the store."""

    def __init__(self, store: AzureStore) -> None:
        self.puts: list[str] = []
        self.parts: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        put, put_part = store.put, store.put_part

        def counted_put(rel, data, digest):
            with self._lock:
                self.puts.append(rel)
            return put(rel, data, digest)

        def counted_part(rel, session, number, data, digest, **kwargs):
            with self._lock:
                self.parts.append((rel, number))
            return put_part(rel, session, number, data, digest, **kwargs)

        store.put, store.put_part = counted_put, counted_part


SETTINGS = Settings(transfers=4, chunk_size=4 * MiB, multipart_threshold=5 * MiB, retries=1)


def run_engine(store: AzureStore, media, journal: Journal):
    engine = Engine(store, journal, SETTINGS, origin=LocalOrigin())
    return engine.run(plan(scan_local(media), store.list(), journal.records()))


def test_engine_copies_every_file_byte_identical(store, service, container, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=8, avatars=1, exports=1,
                         legacy_flat=1, large_files=(13 * MiB,))
    with Journal(tmp_path / "journal.sqlite3") as journal:
        stats = run_engine(store, data.media, journal)
        assert stats.ok and stats.fatal is None, stats.failures
        assert stats.copied == len(data.files)

        blobs = {b.name: b for b in service.get_container_client(container).list_blobs(name_starts_with=f"{FOLDER}/")}
        assert set(blobs) == {f"{FOLDER}/{rel}" for rel in data.files}
        for rel in data.files:
            local = data.path(rel).read_bytes()
            assert blob_bytes(service, container, f"{FOLDER}/{rel}") == local, rel
            assert bytes(blobs[f"{FOLDER}/{rel}"].content_settings.content_md5) == md5(local), rel
        big = next(rel for rel, size in data.files.items() if size == 13 * MiB)
        committed, _ = service.get_blob_client(container, f"{FOLDER}/{big}").get_block_list("committed")
        assert len(committed) == 4  # 4 MiB blocks

        # Nothing is sent again. (The journal holds the MD5 token the upload answered while the listing gives
        # Azure's ETag, so the second run compares MD5s from the listing; the third one skips outright.)
        counting = Counting(store)
        again = run_engine(store, data.media, journal)
        assert again.ok and again.copied == 0 and counting.puts == [] and counting.parts == []
        assert again.skipped + again.identical == len(data.files)
        third = run_engine(store, data.media, journal)
        assert third.ok and third.skipped == len(data.files)


def test_engine_resumes_staged_blocks_without_resending_them(store, service, container, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, avatars=0, exports=0, legacy_flat=0,
                         odd_names=False, empty_files=False, large_files=(13 * MiB,))
    rel = next(rel for rel, size in data.files.items() if size == 13 * MiB)
    path = data.path(rel)
    before = path.stat()
    part_size = part_size_for(before.st_size, SETTINGS.chunk_size, min_part=store.min_part_size,
                              max_parts=store.max_parts)
    digests = digest_file(str(path), part_size)
    assert len(digests.parts) == 4

    # A first run that staged 2 of the 4 blocks and journaled them, then died.
    with Journal(tmp_path / "journal.sqlite3") as journal:
        session = store.start_upload(rel, digests.md5, before.st_size)
        journal.start_upload(rel, before.st_size, before.st_mtime_ns, digests.md5.hex(), session, part_size)
        with open(path, "rb") as handle:
            for number in (1, 2):
                offset = (number - 1) * part_size
                chunk = os.pread(handle.fileno(), part_size, offset)
                token = store.put_part(rel, session, number, chunk, digests.parts[number - 1], offset=offset,
                                       size=before.st_size)
                journal.part_done(rel, number, digests.parts[number - 1].hex(), token)
        journal.flush()
        assert store.uploaded_parts(rel, session, size=before.st_size, part_size=part_size) == {1: None, 2: None}

        blob = service.get_blob_client(container, f"{FOLDER}/{rel}")
        committed, uncommitted = blob.get_block_list("all")
        assert committed == []
        assert [b.id for b in uncommitted] == [f"{session}00000001", f"{session}00000002"]
        assert [b.size for b in uncommitted] == [part_size, part_size]

        counting = Counting(store)
        stats = run_engine(store, data.media, journal)
        assert stats.ok, stats.failures
        assert sorted(n for r, n in counting.parts if r == rel) == [3, 4]  # only the missing blocks
        assert rel not in counting.puts
        assert len(counting.puts) == len(data.files) - 1

        committed, uncommitted = blob.get_block_list("all")
        assert [b.id for b in committed] == [f"{session}{n:08d}" for n in (1, 2, 3, 4)] and uncommitted == []
        assert blob.download_blob().readall() == path.read_bytes()
        assert bytes(blob.get_blob_properties().content_settings.content_md5) == digests.md5
        assert journal.get(rel).verified


def test_resume_with_unjournaled_blocks_sends_them_again(store, service, container, tmp_path):
    """A block the service holds but the journal never recorded as accepted is not trusted."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=0, avatars=0, exports=0, legacy_flat=0,
                         odd_names=False, empty_files=False, large_files=(9 * MiB,))
    (rel,) = data.files
    path = data.path(rel)
    before = path.stat()
    digests = digest_file(str(path), 4 * MiB)
    with Journal(tmp_path / "journal.sqlite3") as journal:
        session = store.start_upload(rel, digests.md5, before.st_size)
        journal.start_upload(rel, before.st_size, before.st_mtime_ns, digests.md5.hex(), session, 4 * MiB)
        with open(path, "rb") as handle:
            store.put_part(rel, session, 1, os.pread(handle.fileno(), 4 * MiB, 0), digests.parts[0])  # not journaled
        counting = Counting(store)
        stats = run_engine(store, data.media, journal)
        assert stats.ok, stats.failures
        assert sorted(n for _, n in counting.parts) == [1, 2, 3]
        assert blob_bytes(service, container, f"{FOLDER}/{rel}") == path.read_bytes()


def test_scan_names_match_listing_names(store, tmp_path):
    """The local scan and the listing agree on names and order for the odd names (the planner merges them)."""
    media = tmp_path / "media"
    for rel in ODD:
        (media / rel).parent.mkdir(parents=True, exist_ok=True)
        (media / rel).write_bytes(rel.encode())
        store.put(rel, rel.encode(), md5(rel.encode()))
    local = [item.rel for item in scan_local(media) if isinstance(item, LocalFile)]
    assert local == [obj.rel for obj in store.list()]


def test_an_account_key_from_label_studios_settings_keeps_the_connection_strings_endpoint():
    """Label Studio's settings name the account and key, never the endpoint: a connection string for the same
    account (Azurite, a sovereign cloud) says where the account is reached; one for another account does not."""
    from lsmigrate.stores.azure.settings import connection_string as azure_connection_string

    given = "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/acct;"
    target = Target(provider="azure", bucket="c", account_name="acct", account_key="a2V5", connection_string=given)
    assert "BlobEndpoint=http://127.0.0.1:1/acct;" in azure_connection_string(target)
    other = Target(provider="azure", bucket="c", account_name="mine", account_key="a2V5", connection_string=given)
    assert "EndpointSuffix=core.windows.net" in azure_connection_string(other)
