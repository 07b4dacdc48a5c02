"""Kill storm: `lsmigrate copy` SIGKILLed at ten seeded random moments, re-run each time, then run to the end.

Promises 2 and 4 under fire: after every kill, no journal row says "verified" unless the object holds exactly the
file's bytes (checked through the ETag moto computes from the bytes it stored: the MD5 for a single PUT, the
multipart arithmetic for parts); at the end every object is byte-identical, `verify --download` is clean, the
journal marks every file verified, and no unfinished multipart upload is left behind.

Kill moments (seeded, so a failure replays the same storm): the first during interpreter start-up, the second
just after the run opened its journal (store check, listing, first PUTs, first journal batch), then six at random
points of the work left and two near its end (measured in bytes the process has read, /proc/PID/io), each
followed by a random 0-150 ms. Progress rather than wall-clock delays: the storm then covers the run on a busy machine as
on an idle one (kills timed from a calibration run all landed after the end whenever the load changed).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from lsdata import make_data_dir
from s3util import all_objects, read_object, run, spawn

from lsmigrate.checksum import multipart_etag

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

MiB = 1024 * 1024
PART = 5 * MiB
THRESHOLD = 6 * MiB
SEED = 1_766_000
KILLS = 10
PREFIX = "lsdata"
TRANSFER = ("--transfers", "4", "--chunk-size", "5MiB", "--multipart-threshold", "6MiB", "--quiet")


@dataclass
class Expected:
    """What the object of one file must look like."""

    size: int
    md5: str
    etag: str  # the ETag moto derives from the bytes it stored
    part_md5s: list[str]  # for multipart files


def _expected(path: Path) -> Expected:
    data = path.read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    if len(data) <= THRESHOLD:
        return Expected(len(data), md5, md5, [])
    parts = [hashlib.md5(data[i:i + PART]).digest() for i in range(0, len(data), PART)]
    return Expected(len(data), md5, multipart_etag(parts), [p.hex() for p in parts])


def _journal_snapshot(state: Path, scratch: Path) -> tuple[list[tuple], list[tuple]]:
    """(files rows, parts rows) of the journal as a killed run left it (read from a copy: no checkpoint,
    no recovery written back into the real one)."""
    if not state.exists():
        return [], []
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(state) + suffix)
        if src.exists():
            shutil.copyfile(src, scratch / (state.name + suffix))
    db = sqlite3.connect(scratch / state.name)
    try:
        files = db.execute("SELECT rel, size, mtime_ns, md5, status, etag, upload_id, part_size FROM files").fetchall()
        parts = db.execute("SELECT rel, part, md5, etag FROM parts").fetchall()
    except sqlite3.OperationalError:  # killed before the schema was committed
        files, parts = [], []
    finally:
        db.close()
    return files, parts


def _check_journal_truth(files: list[tuple], parts: list[tuple], objects: dict[str, dict],
                         expected: dict[str, Expected], when: str) -> int:
    """Every row marked verified stands for an object holding the file's bytes; every journaled part is the
    file's part. Returns the number of verified rows."""
    verified = 0
    for rel, size, _mtime, md5, status, etag, upload_id, part_size in files:
        want = expected[rel]
        if status == "verified":
            verified += 1
            key = f"{PREFIX}/{rel}"
            assert key in objects, f"{when}: journal says {rel!r} is verified but there is no object"
            got = objects[key]["ETag"].strip('"')
            assert got == want.etag, f"{when}: {rel!r} verified in the journal but its object's ETag is {got}"
            assert md5 == want.md5 and size == want.size, f"{when}: journal row of {rel!r} does not describe the file"
            assert etag == got, f"{when}: journal row of {rel!r} names ETag {etag}, the object has {got}"
            assert upload_id is None
        elif upload_id:
            assert md5 == want.md5 and part_size == PART, f"{when}: upload session of {rel!r} has the wrong MD5"
    for rel, number, md5, _etag in parts:
        assert md5 == expected[rel].part_md5s[number - 1], f"{when}: journaled part {number} of {rel!r} is not its part"
    return verified


def _remaining_bytes(objects: dict[str, dict], uploads: list[dict], client, bucket: str,
                     expected: dict[str, Expected]) -> int:
    left = 0
    for rel, want in expected.items():
        item = objects.get(f"{PREFIX}/{rel}")
        if item is None or item["ETag"].strip('"') != want.etag:
            left += want.size
    for upload in uploads:
        try:
            listed = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        except client.exceptions.NoSuchUpload:
            continue
        left -= sum(part["Size"] for part in listed.get("Parts", ()))
    return max(left, 0)


def _settled_state(client, bucket: str) -> tuple[dict[str, dict], list[dict]]:
    """Objects and open uploads once the server is done with what the killed process had already sent (a
    CompleteMultipartUpload or a PUT received before the kill goes on after it)."""
    previous = None
    deadline = time.monotonic() + 5
    while True:
        objects = all_objects(client, bucket, f"{PREFIX}/")
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=f"{PREFIX}/").get("Uploads", [])
        now = ({k: v["ETag"] for k, v in objects.items()}, sorted(u["UploadId"] for u in uploads))
        if now == previous or time.monotonic() > deadline:
            return objects, uploads
        previous = now
        time.sleep(0.15)


def _bytes_read(pid: int) -> int | None:
    """How many bytes process `pid` has read from files so far (Linux /proc/PID/io rchar): a progress clock for
    the copy that costs the server nothing (its sources are read once, large ones twice: MD5, then parts)."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (the journal: the run is past its start-up)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except OSError:
        return False


def _wait_until(proc, condition, timeout: float = 60) -> bool:
    """Poll `condition` while `proc` runs; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="kill moments are read from Linux /proc/PID/{fd,io}")
def test_copy_survives_ten_sigkills(s3_env, s3_bucket, tmp_path):
    # One large file among the small ones (key order), one last of all, so that kills near the end meet its
    # last parts and its CompleteMultipartUpload.
    data = make_data_dir(tmp_path / "ls", projects=4, uploads_per_project=70, large_files=(34 * MiB,))
    last = "zz-last/large-last.bin"
    data.path(last).parent.mkdir()
    data.path(last).write_bytes(random.Random(SEED).randbytes(38 * MiB))
    data.files[last] = 38 * MiB
    expected = {rel: _expected(data.path(rel)) for rel in data.files}
    large = [rel for rel, want in expected.items() if want.part_md5s]
    assert len(large) == 2 and len(expected) > 300
    client, bucket = s3_bucket.client(), s3_bucket.name
    endpoint = ("--endpoint-url", s3_bucket.endpoint_url)
    state = tmp_path / "journal.sqlite3"
    args = ("copy", str(data.root), f"{s3_bucket.url}/{PREFIX}", *endpoint, *TRANSFER, "--state", str(state))

    rng = random.Random(SEED)
    # Where each kill falls: the first two at start-up (imports; store check, listing, journal open, first PUTs),
    # then, once the run has its journal open, at seeded random points of the reading left to do (measured in
    # bytes the process has read), each followed by a seeded random 0-150 ms, so a kill meets whatever the copy
    # is doing at that moment: PUTs, part uploads, batched journal commits, CompleteMultipartUpload, the final
    # flush and clean-up.
    plan = ([("start", None) for _ in range(2)] + [("middle", (0.05, 0.35)) for _ in range(6)]
            + [("end", (0.8, 0.97)) for _ in range(2)])
    assert len(plan) == KILLS
    remaining, done = data.total_bytes(), set()
    log = []
    in_multipart = completed_unjournaled = journal_pending = missed = 0
    for i, (phase, span) in enumerate(plan):
        jitter = rng.uniform(0.0, 0.15)
        started = time.monotonic()
        proc = spawn(*args)
        if i == 0:
            time.sleep(rng.uniform(0.0, 0.3))
            target = 0
        elif phase == "start":
            target = 0
            _wait_until(proc, lambda: _has_open(proc.pid, state))  # noqa: B023 - called at once
            time.sleep(jitter)
        else:
            # The reading still to do: files without a correct object, plus the MD5 pass of large files that
            # have no upload session to resume.
            files, _ = _journal_snapshot(state, tmp_path / "snapshot")
            sessions = {row[0] for row in files if row[6]}
            left = remaining + sum(expected[rel].size for rel in large if rel not in sessions and rel not in done)
            target = rng.uniform(*span) * left
            _wait_until(proc, lambda: _has_open(proc.pid, state))  # noqa: B023 - called at once
            base = _bytes_read(proc.pid) or 0
            _wait_until(proc, lambda: (_bytes_read(proc.pid) or 0) - base >= target)  # noqa: B023 - called at once
            time.sleep(jitter)
        delay = time.monotonic() - started
        landed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        if not landed:
            missed += 1
            assert proc.returncode == 0, f"kill {i}: the run ended on its own with {proc.returncode}"
        objects, uploads = _settled_state(client, bucket)
        files, parts = _journal_snapshot(state, tmp_path / "snapshot")
        verified = _check_journal_truth(files, parts, objects, expected, f"after kill {i} ({phase}, {delay:.2f}s)")
        done = {row[0] for row in files if row[4] == "verified"}
        sent = {rel for rel in expected if f"{PREFIX}/{rel}" in objects} - done  # stored, not yet journaled
        if landed and uploads:
            in_multipart += 1
        if landed and sent & set(large):
            completed_unjournaled += 1
        if landed and sent:
            journal_pending += 1
        remaining = _remaining_bytes(objects, uploads, client, bucket, expected)
        log.append(f"kill {i} {phase:<6} at {delay:5.2f}s (target {target / MiB:5.1f} MiB read): "
                   f"{'landed' if landed else 'missed (run had ended)'}, "
                   f"{len(uploads)} open multipart, {len(objects)} objects, {verified} journaled verified "
                   f"({len(sent)} stored but not journaled), "
                   f"{remaining / MiB:.1f} MiB left")

    final = run(*args, "--json")
    log.append(f"kills with a multipart upload open: {in_multipart}; between a large file's "
               f"CompleteMultipartUpload and its journal row: {completed_unjournaled}; with stored objects not yet "
               f"journaled: {journal_pending}; after the run had ended: {missed}")
    print("\n".join(log))
    assert missed <= KILLS // 2, "most kills should land while the copy runs"
    assert final.exit_code == 0, final.output

    # Every object byte-identical to its file, and nothing else under the folder.
    objects = all_objects(client, bucket, f"{PREFIX}/")
    assert set(objects) == {f"{PREFIX}/{rel}" for rel in data.files}
    for rel in data.files:
        assert read_object(client, bucket, f"{PREFIX}/{rel}") == data.path(rel).read_bytes(), rel

    # The journal: every file verified, and every verified row true to its object's bytes.
    files, parts = _journal_snapshot(state, tmp_path / "snapshot")
    rows = {row[0]: row for row in files}
    assert set(rows) == set(data.files)
    assert all(row[4] == "verified" for row in rows.values()), [r for r in rows.values() if r[4] != "verified"]
    assert not parts, "parts of finished uploads are left in the journal"
    for rel, row in rows.items():
        body = read_object(client, bucket, f"{PREFIX}/{rel}")
        assert row[3] == hashlib.md5(body).hexdigest(), rel
    _check_journal_truth(files, parts, objects, expected, "after the final run")

    # lsmigrate aborts only the uploads its journal recorded (another writer may have its own open under the
    # folder). A kill between CreateMultipartUpload's answer and the journal row leaves one upload whose ID
    # nobody recorded: it holds no part (parts are sent only after the row is written) and is left to the
    # bucket's lifecycle rule. Anything else left open would be a leak.
    leftovers = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for upload in leftovers:
        assert upload["Key"] in {f"{PREFIX}/{rel}" for rel in large}, upload
        listed = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        assert not listed.get("Parts"), f"an upload with parts was abandoned: {upload}"
    assert len(leftovers) <= KILLS - missed

    checked = run("verify", str(data.root), f"{s3_bucket.url}/{PREFIX}", *endpoint, "--download", "--json",
                  "--state", str(state))
    assert checked.exit_code == 0, checked.output
