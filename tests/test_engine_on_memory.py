"""Engine, plan and verify logic on the in-memory store (lsmigrate/stores/memory.py, held to S3's promises by
test_store_contract.py): no server, so each case runs in milliseconds and counts exactly what was sent.
The emulator tests stay for what only a server can show (signatures, wire formats, kills, timeouts).

Every use of the engine, plan and verify API is in the helpers just below; the tests speak in plain
dicts of the current words (copied, skipped, identical, failed, problem; ok, missing, different, extra...)."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from lsmigrate.engine.scheduling import Engine
from lsmigrate.engine.sizes import Settings
from lsmigrate.journal import Journal
from lsmigrate.origins import LocalOrigin, StoreOrigin
from lsmigrate.plan import plan, plan_sync
from lsmigrate.retry import RetryPolicy
from lsmigrate.scan import scan_local
from lsmigrate.stores.base import StoreError
from lsmigrate.stores.memory import MemoryServer, MemoryStore
from lsmigrate.verify import verify

KiB = 1024
PART = 256 * KiB
SETTINGS = Settings(transfers=4, chunk_size=PART, multipart_threshold=2 * PART, retries=1)
ONE_AT_A_TIME = Settings(transfers=1, chunk_size=PART, multipart_threshold=2 * PART, retries=0)  # parts in order
BIG = "upload/1/big.bin"  # 5 parts: 4 x 256 KiB and 44 KiB; over 1 MiB, so never sent whole from the event loop
FILES = {"avatars/a.png": b"avatar", "upload/1/empty.txt": b"", "upload/1/ünï cødé #1.jpg": b"odd name" * 50,
         "upload/2/b.txt": b"b" * 1000, BIG: os.urandom(4 * PART + 44 * KiB)}


# --- the engine, plan and verify API, used here only --------------------------------------------------
@dataclass
class CopyRun:
    outcome: dict[str, str]  # rel -> copied | skipped | identical | failed | problem
    basis: dict[str, str]  # rel -> what "verified" rests on, for verified files
    reason: dict[str, str]
    planned: int
    settled: int
    fatal: str | None
    resumed_bytes: int


def copy(tree: Path, store: MemoryStore, journal: Journal, settings: Settings = SETTINGS) -> CopyRun:
    """`lsmigrate copy`: plan the local tree against the listing and the journal, and run it."""
    return run_engine(plan(scan_local(tree), store.list(), journal.records()), store, journal, settings, LocalOrigin())


def sync(source: MemoryStore, dest: MemoryStore, journal: Journal) -> CopyRun:
    """`lsmigrate sync` from one store to another."""
    return run_engine(plan_sync(source.list(), dest.list(), journal.records()), dest, journal, SETTINGS,
                      StoreOrigin(source))


def run_engine(actions, store, journal, settings, origin) -> CopyRun:
    results = []
    stats = Engine(store, journal, settings, origin=origin).run(actions, listener=results.append)
    assert len(results) == stats.settled, "the listener hears every outcome the stats count, once"
    return CopyRun({r.rel: r.outcome.value for r in results}, {r.rel: r.basis for r in results if r.basis},
                   {r.rel: r.reason for r in results}, stats.planned, stats.settled, stats.fatal, stats.resumed_bytes)


def planned(tree: Path, store: MemoryStore, journal: Journal) -> dict[str, tuple[str, str]]:
    """`lsmigrate plan`: rel -> (what to do, why)."""
    return {a.rel: (a.do.value, a.reason) for a in plan(scan_local(tree), store.list(), journal.records())}


def planned_sync(source: MemoryStore, dest: MemoryStore, journal: Journal) -> dict[str, tuple[str, str]]:
    return {a.rel: (a.do.value, a.reason) for a in plan_sync(source.list(), dest.list(), journal.records())}


@dataclass
class VerifyRun:
    counts: dict[str, int]  # ok | missing | different | extra | unchecked | error | skipped -> files
    problems: dict[str, str]  # rel -> its status, for every file not ok
    bases: dict[str, int]
    clean: bool
    planned: int
    unaccounted: int


def check(tree: Path, store: MemoryStore, journal: Journal, *, download: bool = False) -> VerifyRun:
    """`lsmigrate verify`."""
    report = verify(plan(scan_local(tree), store.list(), journal.records()), store, journal, download=download,
                    workers=4, chunk_size=PART)
    return VerifyRun(dict(report.counts), {rel: status for status, rel, _ in report.problems}, dict(report.bases),
                     report.clean, report.planned, report.unaccounted)


def verified_in_journal(journal: Journal) -> set[str]:
    return {record.rel for record in journal.records() if record.verified}


# --- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "media"
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture(params=["event-loop", "threads"])
def store(request):
    """S3's behaviour with 256 KiB parts; small files from the store's event loop, or all on threads."""
    store = MemoryStore(folder="dest", min_part_size=PART, event_loop=request.param == "event-loop")
    yield store
    store.close()


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "journal.sqlite3") as journal:
        yield journal


@pytest.fixture
def no_backoff(monkeypatch):
    """A file sent again goes at once (the policy's first wait is half a second or more)."""
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, *args, **kwargs: 0.0)


def stored(store: MemoryStore, rel: str) -> bytes:
    return store.server.buckets[store.bucket][store.prefix + rel].data


def sent(store: MemoryStore) -> tuple[int, int]:
    return store.server.count("put"), store.server.count("put_part")


# --- copy ---------------------------------------------------------------------------------------------
def test_a_copy_lands_every_file_and_a_rerun_sends_nothing(tree, store, journal, tmp_path):
    first = copy(tree, store, journal)
    assert first.outcome == dict.fromkeys(FILES, "copied") and first.fatal is None
    assert first.basis == {**dict.fromkeys(FILES, "etag"), BIG: "multipart-etag"}
    assert {rel: stored(store, rel) for rel in FILES} == FILES
    assert sent(store) == (len(FILES) - 1, 5) and store.server.open_uploads() == []
    assert verified_in_journal(journal) == set(FILES)

    before = len(store.server.requests)
    again = copy(tree, store, journal)
    assert again.outcome == dict.fromkeys(FILES, "skipped") and again.basis == first.basis
    assert store.server.requests[before:] == [("list", None)], "one listing, and not one request per file"

    with Journal(tmp_path / "fresh.sqlite3") as fresh:
        compared = copy(tree, store, fresh)
    assert compared.outcome == dict.fromkeys(FILES, "identical") and compared.basis == first.basis
    assert sent(store) == (len(FILES) - 1, 5), "compared by checksum, not sent again"


def test_a_changed_file_and_a_new_one_are_sent_and_nothing_else(tree, store, journal):
    copy(tree, store, journal)
    (tree / "upload/2/b.txt").write_bytes(b"changed while Label Studio was live")
    (tree / "upload/2/new.txt").write_bytes(b"new")
    before = sent(store)
    run = copy(tree, store, journal)
    assert {rel: o for rel, o in run.outcome.items() if o != "skipped"} == dict.fromkeys(
        ["upload/2/b.txt", "upload/2/new.txt"], "copied")
    assert sent(store) == (before[0] + 2, before[1])
    assert stored(store, "upload/2/b.txt") == b"changed while Label Studio was live"


def test_an_interrupted_multipart_upload_resumes_with_only_the_missing_parts(tree, store, journal):
    store.server.inject("put_part", error=StoreError("connection reset (retried)"), nth=3, rel=BIG)
    first = copy(tree, store, journal, ONE_AT_A_TIME)
    assert first.outcome[BIG] == "failed" and "connection reset" in first.reason[BIG]
    [(_, session)] = store.server.open_uploads()
    held = store.uploaded_parts(BIG, session)
    assert 1 <= len(held) < 5
    store.server.drop_part(session, min(held))  # and the server lost one of those
    held.pop(min(held))

    parts_before, starts_before = sent(store)[1], store.server.count("start_upload")
    again = copy(tree, store, journal)
    assert again.outcome[BIG] == "copied" and again.basis[BIG] == "multipart-etag"
    assert sent(store)[1] - parts_before == 5 - len(held), "parts the server held must not be sent again"
    assert store.server.count("start_upload") == starts_before, "the same session went on"
    assert again.resumed_bytes == sum(min(PART, len(FILES[BIG]) - (n - 1) * PART) for n in held)
    assert stored(store, BIG) == FILES[BIG] and store.server.open_uploads() == []


def test_a_session_the_server_lost_is_started_afresh(tree, store, journal):
    store.server.inject("put_part", error=StoreError("connection reset (retried)"), nth=2, rel=BIG)
    copy(tree, store, journal, ONE_AT_A_TIME)
    [(_, session)] = store.server.open_uploads()
    store.abort(BIG, session)  # expired at the server
    parts_before = sent(store)[1]
    again = copy(tree, store, journal)
    assert again.outcome[BIG] == "copied" and sent(store)[1] - parts_before == 5
    assert stored(store, BIG) == FILES[BIG]


@pytest.mark.parametrize("rel, kind", [("upload/2/b.txt", "put"), (BIG, "complete"), (BIG, "put_part")])
def test_a_checksum_that_differs_fails_the_file_and_it_is_never_verified(tree, store, journal, no_backoff, rel, kind):
    store.server.inject(kind, corrupt=True, rel=rel, times=99)
    run = copy(tree, store, journal)
    assert run.outcome[rel] == "failed" and "checksum" in run.reason[rel]
    assert run.outcome == {**dict.fromkeys(FILES, "copied"), rel: "failed"}
    assert rel not in verified_in_journal(journal) and run.planned == run.settled == len(FILES)
    assert store.server.count(kind, rel) >= 2, "sent again (--retries 1) before it was given up"
    if kind != "put_part":  # the server kept other bytes: reading them back shows it
        assert check(tree, store, journal, download=True).problems == {rel: "different"}


def test_a_checksum_that_differs_once_is_mended_by_sending_the_file_again(tree, store, journal, no_backoff):
    store.server.inject("put", corrupt=True, rel="upload/2/b.txt")
    run = copy(tree, store, journal)
    assert run.outcome == dict.fromkeys(FILES, "copied") and store.server.count("put", "upload/2/b.txt") == 2
    assert stored(store, "upload/2/b.txt") == FILES["upload/2/b.txt"]


def test_every_planned_file_ends_in_one_outcome_whatever_fails(tree, store, journal, tmp_path):
    (tree / "upload/2/fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(tree / "upload/2/fifo")  # not copied: a warning
    (tmp_path / "outside.txt").write_text("not for the bucket")
    (tree / "upload/2/link.txt").symlink_to(tmp_path / "outside.txt")  # refused: an error
    store.server.inject("put", error=StoreError("InternalError (retried)"), rel="avatars/a.png")
    run = copy(tree, store, journal)
    assert run.planned == run.settled == len(FILES) + 2
    assert Counter(run.outcome.values()) == {"copied": len(FILES) - 1, "failed": 2, "problem": 1}
    assert run.outcome["avatars/a.png"] == run.outcome["upload/2/link.txt"] == "failed"


def test_a_fatal_error_stops_the_run_but_loses_no_file(tree, store, journal):
    store.server.inject("put", error=StoreError("access denied: PutObject", fatal=True))
    run = copy(tree, store, journal, ONE_AT_A_TIME)
    assert run.fatal and "access denied" in run.fatal
    assert run.planned == run.settled and "copied" not in run.outcome.values()
    assert verified_in_journal(journal) == set()


def test_clean_up_aborts_only_the_uploads_the_journal_recorded(tree, store, journal):
    theirs = store.start_upload("upload/1/label-studio-writing.png", b"\0" * 16, 10)  # another writer's
    ours = store.start_upload("upload/1/gone.bin", b"\0" * 16, 3 * PART)  # an earlier run's, file since deleted
    journal.start_upload("upload/1/gone.bin", 3 * PART, 1, "00" * 16, ours, PART)
    assert copy(tree, store, journal).outcome == dict.fromkeys(FILES, "copied")
    assert store.server.open_uploads() == [("dest/upload/1/label-studio-writing.png", theirs)]


def test_sync_between_stores_of_one_server_copies_server_side(tree, store, journal, tmp_path):
    copy(tree, store, journal)
    dest = MemoryStore(store.server, store.bucket, "replica", min_part_size=PART)
    with Journal(tmp_path / "sync.sqlite3") as sync_journal:
        run = sync(store, dest, sync_journal)
        assert run.outcome == dict.fromkeys(FILES, "copied")
        assert run.basis == {**dict.fromkeys(FILES, "etag"), BIG: "server-copy"}  # a multipart source has no MD5
        assert store.server.count("copy_from") == len(FILES) and sent(store) == (len(FILES) - 1, 5)
        assert {rel: stored(dest, rel) for rel in FILES} == FILES
        assert sync(store, dest, sync_journal).outcome == dict.fromkeys(FILES, "skipped")


def test_sync_from_another_server_streams_the_bytes(tree, store, journal, tmp_path):
    copy(tree, store, journal)
    dest = MemoryStore(MemoryServer(("other",)), "other", min_part_size=PART)
    with Journal(tmp_path / "sync.sqlite3") as sync_journal:
        run = sync(store, dest, sync_journal)
    dest.close()
    assert run.outcome == dict.fromkeys(FILES, "copied") and dest.server.count("copy_from") == 0
    assert {rel: stored(dest, rel) for rel in FILES} == FILES and dest.server.count("put_part") == 5


# --- plan ---------------------------------------------------------------------------------------------
def test_the_plan_names_what_to_do_with_each_file_and_why(tree, store, journal):
    assert planned(tree, store, journal) == {rel: ("copy", "missing at destination") for rel in FILES}
    copy(tree, store, journal)
    assert {do for do, _ in planned(tree, store, journal).values()} == {"skip"}
    store.delete("avatars/a.png")
    store.put("upload/2/b.txt", b"short", hashlib.md5(b"short").digest())
    store.put("upload/1/empty.txt", b"x", hashlib.md5(b"x").digest())
    store.put("extra.txt", b"extra", hashlib.md5(b"extra").digest())
    (tree / "upload/1/ünï cødé #1.jpg").write_bytes(b"same size" + b"!" * (len(FILES["upload/1/ünï cødé #1.jpg"]) - 9))
    assert planned(tree, store, journal) == {
        "avatars/a.png": ("copy", "missing at destination"), "upload/2/b.txt": ("copy", "size differs"),
        "upload/1/empty.txt": ("copy", "size differs"), "extra.txt": ("extra", "only at the destination"),
        "upload/1/ünï cødé #1.jpg": ("check", "same size, checksum to compare"),
        BIG: ("skip", "verified earlier, unchanged")}


def test_the_plan_resumes_an_interrupted_upload(tree, store, journal):
    store.server.inject("put_part", error=StoreError("connection reset (retried)"), nth=2, rel=BIG)
    copy(tree, store, journal, ONE_AT_A_TIME)
    assert planned(tree, store, journal)[BIG] == ("copy", "resume interrupted upload")


def test_sync_compares_size_and_mtime_where_neither_side_has_an_md5(journal):
    clock = [1000.0]
    source, dest = (MemoryStore(MemoryServer((name,), clock=lambda: clock[0]), name, min_part_size=1)
                    for name in ("source", "dest"))
    for store, rel, when in ((dest, "older.bin", 1000), (source, "older.bin", 2000),
                             (source, "newer.bin", 2000), (dest, "newer.bin", 3000)):
        clock[0] = when
        session = store.start_upload(rel, hashlib.md5(b"ab").digest(), 2)
        tokens = [store.put_part(rel, session, n, p, hashlib.md5(p).digest()) for n, p in ((1, b"a"), (2, b"b"))]
        store.complete(rel, session, list(enumerate(tokens, 1)), hashlib.md5(b"ab").digest())  # no MD5 listed
    assert planned_sync(source, dest, journal) == {
        "older.bin": ("copy", "source newer (size+mtime; no md5 on both sides)"),
        "newer.bin": ("skip", "same size, destination not older (size+mtime; no md5 on both sides)")}


# --- verify -------------------------------------------------------------------------------------------
def test_verify_reports_missing_different_and_extra(tree, store, journal, tmp_path):
    copy(tree, store, journal)
    assert check(tree, store, journal).counts == {"ok": len(FILES)}
    store.delete("avatars/a.png")
    other = b"\0" * len(FILES["upload/2/b.txt"])  # same size, other bytes
    store.put("upload/2/b.txt", other, hashlib.md5(other).digest())
    store.put("not-in-source.txt", b"extra", hashlib.md5(b"extra").digest())
    found = check(tree, store, journal)
    assert found.problems == {"avatars/a.png": "missing", "upload/2/b.txt": "different", "not-in-source.txt": "extra"}
    assert found.counts["ok"] == len(FILES) - 2 and not found.clean and found.unaccounted == 0
    assert "upload/2/b.txt" not in verified_in_journal(journal), "the journal no longer vouches for it"
    with Journal(tmp_path / "fresh.sqlite3") as fresh:
        assert check(tree, store, fresh).problems == found.problems


def test_verify_names_its_basis_and_reads_back_with_download(tree, store, journal, tmp_path):
    copy(tree, store, journal)
    with Journal(tmp_path / "fresh.sqlite3") as fresh:
        by_etag = check(tree, store, fresh)
        downloaded = check(tree, store, fresh, download=True)
    assert by_etag.clean and by_etag.bases == {"etag": len(FILES) - 1, "multipart-etag": 1}
    assert downloaded.clean and downloaded.bases == {"download": len(FILES)}
    assert store.server.count("read_range") >= len(FILES) - 1  # every non-empty object read back


def test_a_check_that_fails_is_an_error_for_that_file_never_a_gap(tree, store, journal):
    copy(tree, store, journal)
    store.server.inject("read_range", error=StoreError("GetObject failed: InternalError (retried)"), rel=BIG)
    found = check(tree, store, journal, download=True)
    assert found.problems == {BIG: "error"} and found.counts == {"ok": len(FILES) - 1, "error": 1}
    assert found.planned == len(FILES) and found.unaccounted == 0 and not found.clean


def test_a_multipart_object_of_unknown_part_size_is_unchecked_not_verified(tree, store, journal):
    data = FILES[BIG]
    parts = [data[:3 * PART], data[3 * PART:]]  # 768 KiB parts: no part size verify tries explains the ETag
    session = store.start_upload(BIG, hashlib.md5(data).digest(), len(data))
    tokens = [store.put_part(BIG, session, n, p, hashlib.md5(p).digest()) for n, p in enumerate(parts, 1)]
    store.complete(BIG, session, list(enumerate(tokens, 1)), hashlib.md5(data).digest())
    found = check(tree, store, journal)
    assert found.problems == {BIG: "unchecked", **{rel: "missing" for rel in FILES if rel != BIG}}
