"""Hostile trees, journals and deployment files: every case has one defined outcome.

Copied exactly, skipped with a reason, or refused with one clear line and the DESIGN.md exit code; never a
traceback, never a hang, never a journal row saying "verified" for an object that does not hold the file's bytes.
The source tree is a plain folder (copied as it is) unless the case needs a Label Studio data dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lsdata import make_data_dir
from s3util import all_objects, read_object, run

from lsmigrate.origins import LocalOrigin

MiB = 1024 * 1024
FOLDER = "h"
PARTS = ("--chunk-size", "5MiB", "--multipart-threshold", "6MiB")

pytestmark = pytest.mark.timeout(120)


# helpers ---------------------------------------------------------------------------------------------------
def _copy(src: Path, bucket, state: Path, *extra: str, folder: str = FOLDER):
    return run("copy", str(src), f"{bucket.url}/{folder}", "--endpoint-url", bucket.endpoint_url, "--json",
               "--state", str(state), *extra)


def _verify(src: Path, bucket, state: Path, *extra: str, folder: str = FOLDER):
    return run("verify", str(src), f"{bucket.url}/{folder}", "--endpoint-url", bucket.endpoint_url, "--json",
               "--state", str(state), *extra)


def _cli(*args: str, timeout: float = 60, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The CLI as its own process, killed (and the test failed) if it does not end in `timeout` seconds."""
    return subprocess.run([*prefix, sys.executable, "-m", "lsmigrate.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
    assert "unexpected " not in text, text  # cli.guarded's wording for an exception it did not expect


def _one_line_error(stderr: str) -> str:
    _no_traceback(stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lsmigrate: error: "), stderr
    return lines[0]


def _keys(bucket, folder: str = FOLDER) -> set[str]:
    return {key[len(folder) + 1:] for key in all_objects(bucket.client(), bucket.name, f"{folder}/")}


def _journal(state: Path) -> dict[str, tuple]:
    db = sqlite3.connect(state)
    try:
        rows = db.execute("SELECT rel, size, mtime_ns, md5, status, etag, upload_id FROM files").fetchall()
    finally:
        db.close()
    return {row[0]: row for row in rows}


def _assert_journal_honest(state: Path, bucket, folder: str = FOLDER) -> set[str]:
    """Every row marked verified names an object whose bytes have the row's MD5. Returns the verified names."""
    verified = set()
    for rel, row in _journal(state).items():
        if row[4] != "verified":
            continue
        body = read_object(bucket.client(), bucket.name, f"{folder}/{rel}")
        assert hashlib.md5(body).hexdigest() == row[3], f"{rel!r} is journaled verified but its object differs"
        assert len(body) == row[1]
        verified.add(rel)
    return verified


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _assert_copied_exactly(src: Path, bucket, rels, folder: str = FOLDER) -> None:
    client = bucket.client()
    for rel in rels:
        assert read_object(client, bucket.name, f"{folder}/{rel}") == (src / rel).read_bytes(), rel


@contextmanager
def _wrapped(name: str, before=None, after=None) -> Iterator[None]:
    """LocalOrigin.<name>(self, entry, ...) with hooks run before/after the real call, for in-process runs."""
    real = getattr(LocalOrigin, name)

    def wrapper(self, entry, *args, **kwargs):
        if before is not None:
            before(entry)
        result = real(self, entry, *args, **kwargs)
        if after is not None:
            after(entry)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalOrigin, name, wrapper)
        yield


def _on_tiny_tmpfs(mountpoint: Path, size: str, fill: int) -> tuple[str, ...]:
    """A `_cli` prefix that runs it in a private mount namespace with a `size` tmpfs on `mountpoint`, `fill`
    bytes of it taken first (skips the test where such namespaces are not allowed)."""
    if not _namespaces_work():
        pytest.skip("no private mount namespace here (unshare -rm) to mount a tiny tmpfs in")
    mountpoint.mkdir()
    script = (f'mount -t tmpfs -o size={size} tmpfs "$1" || exit 97; head -c {fill} /dev/zero > "$1/fill" 2>/dev/null; '
              'shift; exec "$@"')
    return ("unshare", "-rm", "sh", "-c", script, "sh", str(mountpoint))


def _namespaces_work() -> bool:
    """Whether `unshare -rm` (a private mount namespace, as a mapped root) can mount here."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


# names ------------------------------------------------------------------------------------------------------
LONG_NAME = "é" * 125 + "x.txt"  # 255 bytes of UTF-8: the longest name ext4 and most filesystems take
ODD_NAMES = (
    " leading space.txt", "trailing space.txt ", "  both  ", " dir /inside.txt", "dir /inside.txt",
    "a..b", "..hidden", "...", "x../..y/z..",
    "tab\there.txt", "ctl\x01.txt", "del\x7f.txt", "esc\x1b[31mred.txt",
    LONG_NAME,
    "caf\u00e9.txt", "cafe\u0301.txt",  # NFC and NFD: two names, two objects
    "Photo.JPG", "photo.jpg", "PHOTO.jpg", "Dir/case.txt", "dir/case.txt", "dir/Case.txt",
)


def test_odd_names_land_exactly_and_a_second_run_sends_nothing(s3_env, s3_bucket, tmp_path):
    assert len(LONG_NAME.encode()) == 255
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {rel: f"{i}: {rel!r}".encode() for i, rel in enumerate(ODD_NAMES)})
    first = _copy(src, s3_bucket, state)
    _no_traceback(first.output)
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert (doc["copied"], doc["failed"], doc["warnings"]) == (len(ODD_NAMES), 0, 0)
    assert _keys(s3_bucket) == set(ODD_NAMES)  # no trimming, no normalization, no case folding
    _assert_copied_exactly(src, s3_bucket, ODD_NAMES)
    assert _assert_journal_honest(state, s3_bucket) == set(ODD_NAMES)

    again = json.loads(_copy(src, s3_bucket, state).stdout)  # listing and journal merge in the same order
    assert (again["copied"], again["skipped"], again["identical"]) == (0, len(ODD_NAMES), 0)
    checked = _verify(src, s3_bucket, state, "--download")
    assert checked.exit_code == 0, checked.output


def test_newline_in_a_name_is_copied_exactly_or_reported(s3_env, s3_bucket, tmp_path):
    """moto cannot route a key with a line feed (AWS takes it); either way the outcome is a defined one."""
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    rel = "line\nbreak.txt"
    _write_tree(src, {rel: b"two lines", "plain.txt": b"plain"})
    result = _copy(src, s3_bucket, state, "--retries", "0")
    _no_traceback(result.output)
    doc = json.loads(result.stdout)
    if result.exit_code == 0:
        _assert_copied_exactly(src, s3_bucket, [rel, "plain.txt"])
    else:
        assert result.exit_code == 1 and doc["failed"] == 1
        assert doc["failures"][0]["path"] == rel and doc["failures"][0]["reason"]
        assert rel not in _keys(s3_bucket) and rel not in _assert_journal_honest(state, s3_bucket)
        _assert_copied_exactly(src, s3_bucket, ["plain.txt"])


def test_control_characters_in_names_are_not_echoed_raw(s3_env, s3_bucket, tmp_path):
    src = tmp_path / "src"
    _write_tree(src, {"plain.txt": b"plain"})
    os.mkfifo(src / "evil\x1b]0;owned\x07\x1b[2J.fifo")  # skipped with a reason: the reason names it
    result = run("copy", str(src), f"{s3_bucket.url}/{FOLDER}", "--endpoint-url", s3_bucket.endpoint_url,
                 "--state", str(tmp_path / "j.sqlite3"))
    assert result.exit_code == 0, result.output
    assert "fifo" in result.output
    assert not any(ord(c) < 32 and c not in "\n" or c == "\x7f" for c in result.output), repr(result.output)


def _path_of_key_length(length: int) -> str:
    """A relative path that makes `FOLDER/<path>` exactly `length` bytes (directories of 200 bytes)."""
    budget = length - len(FOLDER) - 1
    parts = []
    while budget > 250:
        parts.append("d" * 200)
        budget -= 201
    parts.append("f" * (budget - 4) + ".txt")
    rel = "/".join(parts)
    assert len(f"{FOLDER}/{rel}".encode()) == length
    return rel


def test_key_of_exactly_1024_bytes_is_copied(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    rel = _path_of_key_length(1024)
    _write_tree(src, {rel: b"at the limit"})
    result = _copy(src, s3_bucket, state)
    assert result.exit_code == 0, result.output
    _assert_copied_exactly(src, s3_bucket, [rel])


def test_key_over_1024_bytes_is_reported_and_the_rest_copied(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    rel = _path_of_key_length(1308)
    _write_tree(src, {rel: b"too long a key", "fine.txt": b"fine"})
    result = _copy(src, s3_bucket, state)
    _no_traceback(result.output)
    doc = json.loads(result.stdout)
    assert result.exit_code == 1, result.output
    assert doc["copied"] == 1 and doc["failed"] == 1
    assert doc["failures"][0]["path"] == rel and "1024" in doc["failures"][0]["reason"]
    assert _keys(s3_bucket) == {"fine.txt"}


# links and special files ----------------------------------------------------------------------------------
def test_symlink_loop_is_reported_not_followed(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"ok.txt": b"ok"})
    (src / "loop-a").symlink_to("loop-b")
    (src / "loop-b").symlink_to("loop-a")
    (src / "self").symlink_to("self")
    result = _copy(src, s3_bucket, state)
    _no_traceback(result.output)
    assert result.exit_code == 1, result.output  # like any broken link: the file cannot be copied
    doc = json.loads(result.stdout)
    reasons = {item["path"]: item["reason"] for item in doc["failures"]}
    assert set(reasons) == {"loop-a", "loop-b", "self"} and all("symlink" in r for r in reasons.values())
    assert _keys(s3_bucket) == {"ok.txt"}


def test_directory_symlink_to_its_parent_is_skipped(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"top.txt": b"top", "sub/f.txt": b"f"})
    (src / "sub" / "up").symlink_to("..")
    (src / "sub" / "here").symlink_to(".")
    result = _copy(src, s3_bucket, state)
    _no_traceback(result.output)
    assert result.exit_code == 0, result.output  # inside the tree: a warning, not an error
    doc = json.loads(result.stdout)
    assert doc["warnings"] == 2
    assert {item["path"] for item in doc["failures"]} == {"sub/up", "sub/here"}
    assert all("symlink to a directory" in item["reason"] for item in doc["failures"])
    assert _keys(s3_bucket) == {"top.txt", "sub/f.txt"}

    (src / "escape").symlink_to("..")  # its parent is outside the source tree: refused, an error
    result = _copy(src, s3_bucket, state)
    assert result.exit_code == 1, result.output
    reasons = {item["path"]: item["reason"] for item in json.loads(result.stdout)["failures"]}
    assert "outside the source tree" in reasons["escape"]
    assert _keys(s3_bucket) == {"top.txt", "sub/f.txt"}


def test_fifo_and_socket_are_skipped_and_nothing_hangs(s3_env, s3_bucket, tmp_path, monkeypatch):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"regular.txt": b"regular"})
    os.mkfifo(src / "a.fifo")
    monkeypatch.chdir(src)  # a socket path must stay under 108 bytes: bind it relative
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("a.sock")
    server.listen(1)
    (src / "fifo-link").symlink_to("a.fifo")
    target = (f"{s3_bucket.url}/{FOLDER}", "--endpoint-url", s3_bucket.endpoint_url, "--json", "--state", str(state))
    try:
        copied = _cli("copy", str(src), *target)
        checked = _cli("verify", str(src), *target)
        planned = _cli("plan", str(src), *target)
    finally:
        server.close()
    _no_traceback(copied.stderr)
    assert copied.returncode == 0, copied.stderr
    doc = json.loads(copied.stdout)
    assert doc["copied"] == 1 and doc["warnings"] == 3
    reasons = {item["path"]: item["reason"] for item in doc["failures"]}
    assert set(reasons) == {"a.fifo", "a.sock", "fifo-link"} and all(r.startswith("skipped: ") for r in reasons.values())
    assert _keys(s3_bucket) == {"regular.txt"}
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["counts"] == {"ok": 1, "skipped": 3}
    assert planned.returncode == 0, planned.stderr


# the tree changing under the copy -------------------------------------------------------------------------
def test_file_replaced_by_a_directory_mid_run_is_reported(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"a.txt": b"a", "victim.txt": b"soon a directory", "z.txt": b"z"})

    def replace(entry):
        if entry.rel == "victim.txt" and Path(entry.path).is_file():
            os.remove(entry.path)
            os.mkdir(entry.path)
            Path(entry.path, "inner.txt").write_bytes(b"inner")

    with _wrapped("read_whole", before=replace):
        result = _copy(src, s3_bucket, state)
    _no_traceback(result.output)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["copied"] == 2 and doc["failed"] == 1
    assert doc["failures"][0]["path"] == "victim.txt" and "cannot read" in doc["failures"][0]["reason"]
    assert _keys(s3_bucket) == {"a.txt", "z.txt"}
    assert _assert_journal_honest(state, s3_bucket) == {"a.txt", "z.txt"}

    again = _copy(src, s3_bucket, state)  # the next run copies the tree as it is now
    assert again.exit_code == 0, again.output
    _assert_copied_exactly(src, s3_bucket, ["a.txt", "victim.txt/inner.txt", "z.txt"])


@pytest.mark.slow
def test_large_file_replaced_by_a_directory_mid_upload_leaves_no_open_upload(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"big.bin": os.urandom(7 * MiB), "small.txt": b"small"})
    path = src / "big.bin"

    def replace(entry):
        if entry.rel == "big.bin" and path.is_file():
            path.unlink()
            path.mkdir()

    with _wrapped("read_into", before=replace):
        result = _copy(src, s3_bucket, state, *PARTS)
    _no_traceback(result.output)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["failures"][0]["path"] == "big.bin" and "cannot read" in doc["failures"][0]["reason"]
    assert _keys(s3_bucket) == {"small.txt"}
    assert _assert_journal_honest(state, s3_bucket) == {"small.txt"}

    again = _copy(src, s3_bucket, state, *PARTS)  # a clean run: nothing to copy, nothing left behind
    assert again.exit_code == 0, again.output
    uploads = s3_bucket.client().list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", [])
    assert uploads == [], "the upload of the file that became a directory is never aborted"


def test_file_replaced_by_a_fifo_mid_run_does_not_hang(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"a.txt": b"a", "victim.txt": b"soon a fifo"})
    fifo = src / "victim.txt"

    def replace(entry):
        if entry.rel == "victim.txt" and fifo.is_file():
            fifo.unlink()
            os.mkfifo(fifo)

    results = []
    with _wrapped("read_whole", before=replace):
        worker = threading.Thread(target=lambda: results.append(_copy(src, s3_bucket, state, "--retries", "0")),
                                  daemon=True)
        worker.start()
        worker.join(8)
        hung = worker.is_alive()
        if hung:  # let the blocked open() return (a writer comes and goes), so the thread ends
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
            worker.join(30)
    assert not hung, "the copy blocked on the FIFO"
    result = results[0]
    _no_traceback(result.output)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["failures"][0]["path"] == "victim.txt"


def _grow(path: Path, times: list[int], limit: int):
    def after(entry):
        if Path(entry.path) == path and len(times) < limit:
            times.append(1)
            with open(path, "ab") as handle:
                handle.write(b" and then some more")
    return after


def test_file_growing_once_while_sent_lands_with_its_new_content(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"log.txt": b"first lines", "other.txt": b"other"})
    path, grown = src / "log.txt", []
    with _wrapped("read_whole", after=_grow(path, grown, 1)):
        result = _copy(src, s3_bucket, state)
    _no_traceback(result.output)
    assert grown and result.exit_code == 0, result.output
    body = read_object(s3_bucket.client(), s3_bucket.name, f"{FOLDER}/log.txt")
    assert body == path.read_bytes() == b"first lines and then some more"
    assert _journal(state)["log.txt"][3] == hashlib.md5(body).hexdigest()
    _assert_journal_honest(state, s3_bucket)


def test_file_that_keeps_growing_is_reported_not_marked_done(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"log.txt": b"first lines", "other.txt": b"other"})
    path, grown = src / "log.txt", []
    with _wrapped("read_whole", after=_grow(path, grown, 100)):
        result = _copy(src, s3_bucket, state, "--retries", "1")
    _no_traceback(result.output)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["failures"] == [{"path": "log.txt", "reason": "log.txt changed while being sent"}]
    assert _assert_journal_honest(state, s3_bucket) == {"other.txt"}

    # It stops growing: the next run sends what it holds now.
    again = _copy(src, s3_bucket, state)
    assert again.exit_code == 0, again.output
    _assert_copied_exactly(src, s3_bucket, ["log.txt"])
    assert "log.txt" in _assert_journal_honest(state, s3_bucket)


@pytest.mark.slow
def test_large_file_growing_during_its_parts_lands_with_its_new_content(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"big.bin": os.urandom(7 * MiB)})
    path, grown = src / "big.bin", []
    with _wrapped("read_into", after=_grow(path, grown, 1)):
        result = _copy(src, s3_bucket, state, *PARTS)
    _no_traceback(result.output)
    assert grown and result.exit_code == 0, result.output
    body = read_object(s3_bucket.client(), s3_bucket.name, f"{FOLDER}/big.bin")
    assert body == path.read_bytes() and body.endswith(b" and then some more")
    assert _journal(state)["big.bin"][3] == hashlib.md5(body).hexdigest()
    assert s3_bucket.client().list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


# a read-only source ----------------------------------------------------------------------------------------
def _snapshot(root: Path) -> dict[str, tuple]:
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else None
        found[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return found


@pytest.mark.slow
def test_read_only_data_dir_is_copied(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=10, large_files=(7 * MiB,))
    before = _snapshot(data.root)
    state = tmp_path / "state" / "j.sqlite3"
    endpoint = ("--endpoint-url", s3_bucket.endpoint_url)
    commands = [
        ("copy", str(data.root), f"{s3_bucket.url}/{FOLDER}", *endpoint, *PARTS, "--state", str(state), "--json"),
        ("verify", str(data.root), f"{s3_bucket.url}/{FOLDER}", *endpoint, "--state", str(state), "--download"),
        ("local-to-s3", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/l2s", *endpoint, *PARTS,
         "--state", str(tmp_path / "state" / "l2s.sqlite3"), "--no-cutover"),
    ]
    if _namespaces_work():
        # A read-only bind mount of the data dir in a private mount namespace: writes fail with EROFS, for root too.
        script = ('mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" || exit 97; '
                  'if touch "$1/.probe" 2>/dev/null; then exit 98; fi; shift; exec "$@"')
        prefix = ("unshare", "-rm", "sh", "-c", script, "sh", str(data.root))
    else:  # chmod is no barrier for root: then this only shows that copy needs no write permission
        subprocess.run(["chmod", "-R", "a-w", str(data.root)], check=True)
        prefix = ()
    try:
        results = [_cli(*command, prefix=prefix, timeout=90) for command in commands]
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(data.root)], check=True)
    for result in results:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr
        _no_traceback(result.stderr)
    assert json.loads(results[0].stdout)["copied"] == len(data.files)
    _assert_copied_exactly(data.media, s3_bucket, data.files)
    assert _keys(s3_bucket, "l2s") == set(data.files)
    assert _snapshot(data.root) == before  # promise 1: not one byte, mode or mtime changed


# the journal -----------------------------------------------------------------------------------------------
def test_journal_under_a_regular_file_is_a_clear_error(s3_env, s3_bucket, tmp_path):
    src = tmp_path / "src"
    _write_tree(src, {"a.txt": b"a"})
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"a file")
    result = _copy(src, s3_bucket, blocker / "deeper" / "j.sqlite3")
    assert result.exit_code == 2, result.output
    line = _one_line_error(result.stderr)
    assert "journal" in line and str(blocker) in line
    assert _keys(s3_bucket) == set()


@pytest.mark.slow
def test_journal_on_a_full_filesystem_is_a_clear_error(s3_env, s3_bucket, tmp_path):
    src, full = tmp_path / "src", tmp_path / "full"
    _write_tree(src, {"a.txt": b"a"})
    result = _cli("copy", str(src), f"{s3_bucket.url}/{FOLDER}", "--endpoint-url", s3_bucket.endpoint_url,
                  "--state", str(full / "j.sqlite3"), prefix=_on_tiny_tmpfs(full, "64k", 1048576))
    assert result.returncode == 2, result.stdout + result.stderr
    line = _one_line_error(result.stderr)
    assert "full" in line and str(full / "j.sqlite3") in line
    assert _keys(s3_bucket) == set()


@pytest.mark.slow
def test_journal_filesystem_filling_up_mid_run_is_a_clear_error(s3_env, s3_bucket, tmp_path):
    src, full = tmp_path / "src", tmp_path / "full"
    _write_tree(src, {f"d{i % 7}/file-{i:04d}-{'x' * 60}.txt": f"{i}".encode() * 50 for i in range(600)})
    # 512 KiB, all but 128 KiB taken: room to create the journal (with its WAL and shared-memory index), not
    # to record 600 files in it.
    prefix = _on_tiny_tmpfs(full, "512k", 393216)
    args = ("copy", str(src), f"{s3_bucket.url}/{FOLDER}", "--endpoint-url", s3_bucket.endpoint_url, "--json",
            "--state", str(full / "j.sqlite3"), "--transfers", "4")
    result = _cli(*args, prefix=prefix)
    assert _keys(s3_bucket), "the journal should fill up mid-run, after some files were sent"
    _no_traceback(result.stderr)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr
    line = _one_line_error(result.stderr)
    assert "full" in line and "journal" in line
    assert "internal error" not in line, "a full disk is not a bug in lsmigrate"
    # The journal is lost with its filesystem; a run with another one compares what is there and finishes.
    again = _copy(src, s3_bucket, tmp_path / "elsewhere.sqlite3")
    assert again.exit_code == 0, again.output
    assert _assert_journal_honest(tmp_path / "elsewhere.sqlite3", s3_bucket) == set(_keys(s3_bucket))


def test_journal_of_random_bytes_is_a_clear_error(s3_env, s3_bucket, tmp_path):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {"a.txt": b"a"})
    state.write_bytes(os.urandom(64 * 1024))
    result = _copy(src, s3_bucket, state)
    assert result.exit_code == 2, result.output
    line = _one_line_error(result.stderr)
    assert str(state) in line and "move it aside or pass another --state" in line
    assert _keys(s3_bucket) == set()


@pytest.mark.parametrize("keep", ["header", "half"])
def test_truncated_journal_is_a_clear_error(s3_env, s3_bucket, tmp_path, keep):
    src, state = tmp_path / "src", tmp_path / "j.sqlite3"
    _write_tree(src, {f"dir{i % 5}/file-{i:04d}-{'y' * 40}.txt": os.urandom(64) for i in range(400)})
    assert _copy(src, s3_bucket, state).exit_code == 0
    size = state.stat().st_size
    assert size > 8 * 4096 and not Path(f"{state}-wal").exists()
    with open(state, "r+b") as handle:
        handle.truncate(60 if keep == "header" else size // 2)
    result = _copy(src, s3_bucket, state)
    assert result.exit_code == 2, result.output
    line = _one_line_error(result.stderr)
    assert str(state) in line and "--state" in line


# deployment files with shell syntax ----------------------------------------------------------------------
def _injections(canary: Path, pwned: Path) -> list[str]:
    return [
        f"$(touch {pwned})",
        f"`touch {pwned}`",
        f"bkt; touch {pwned}; reboot",
        f"$(rm -rf {canary})",  # never `rm -rf /` in a test, even one meant to prove it is not run
        f'"$(touch {pwned})"',
        f"'$(touch {pwned})'",
        f"x && touch {pwned} || reboot",
    ]


@pytest.fixture
def small_data_dir(tmp_path):
    return make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)


def _env_list(path: Path, bucket_value: str, endpoint: str, folder: str = "media") -> Path:
    path.write_text("STORAGE_TYPE=s3\n"
                    f"STORAGE_AWS_BUCKET_NAME={bucket_value}\n"
                    f"STORAGE_AWS_FOLDER={folder}\n"
                    f"STORAGE_AWS_ENDPOINT_URL={endpoint}\n"
                    "STORAGE_AWS_ACCESS_KEY_ID=testing\nSTORAGE_AWS_SECRET_ACCESS_KEY=testing\n")
    return path


def _values_file(path: Path, bucket_value: str, endpoint: str) -> Path:
    path.write_text("global:\n  persistence:\n    enabled: true\n    type: s3\n    config:\n      s3:\n"
                    f"        bucket: {json.dumps(bucket_value)}\n"
                    f"        endpointUrl: {endpoint}\n"
                    "        accessKey: testing\n        secretKey: testing\n        folder: media\n")
    return path


def _local_to_s3_from(kind: str, value: str, endpoint: str, data_dir, tmp_path: Path):
    if kind == "env-file":
        option = ("--env-file", str(_env_list(tmp_path / "env.list", value, endpoint)))
    else:
        option = ("--values", str(_values_file(tmp_path / "values.yaml", value, endpoint)))
    return run("local-to-s3", "--data-dir", str(data_dir.root), *option, "--no-cutover",
               "--state", str(tmp_path / "j.sqlite3"))


@pytest.mark.parametrize("kind", ["env-file", "values"])
def test_shell_syntax_in_the_bucket_name_is_never_executed(s3_env, moto_server, small_data_dir, tmp_path, kind):
    canary = tmp_path / "canary"
    canary.mkdir()
    pwned = Path("/tmp") / f"pwned-{uuid.uuid4().hex}"
    for value in _injections(canary, pwned):
        result = _local_to_s3_from(kind, value, moto_server.endpoint_url, small_data_dir, tmp_path)
        assert result.exit_code == 2, (value, result.output)  # a bucket by that name cannot exist
        _no_traceback(result.output)
        assert result.stderr.count("lsmigrate: error: ") == 1, result.stderr
        assert not pwned.exists() and canary.is_dir(), f"{value!r} was executed"


@pytest.mark.parametrize("kind", ["env-file", "values"])
def test_invalid_bucket_name_from_a_deployment_file_is_one_clear_line(s3_env, moto_server, small_data_dir, tmp_path,
                                                                      kind):
    pwned = Path("/tmp") / f"pwned-{uuid.uuid4().hex}"
    value = f"$(touch {pwned})"
    result = _local_to_s3_from(kind, value, moto_server.endpoint_url, small_data_dir, tmp_path)
    assert result.exit_code == 2, result.output
    last = result.stderr.rstrip("\n").splitlines()[-1]
    if kind == "env-file":  # a `$` is read one way by docker run --env-file and another by compose: refused first
        assert last.startswith("lsmigrate: error: ") and "STORAGE_AWS_BUCKET_NAME" in last and "$" in last, last
    else:
        assert last.startswith("lsmigrate: error: ") and value in last and "bucket name" in last, result.stderr
    assert "credentials" not in result.stderr, "the credentials are fine: the name is not"
    assert not pwned.exists()


def test_shell_syntax_in_env_list_folder_is_refused_never_run(s3_env, s3_bucket, small_data_dir, tmp_path):
    """docker run --env-file passes `$(...)` as it is, compose would expand `$`: the two would put Label Studio's
    files under different folders, so the folder is refused (one line, exit 2), and nothing runs or is sent."""
    pwned = Path("/tmp") / f"pwned-{uuid.uuid4().hex}"
    folder = f"$(touch {pwned.name})`touch {pwned.name}`; reboot"
    env_list = _env_list(tmp_path / "env.list", s3_bucket.name, s3_bucket.endpoint_url, folder=folder)
    result = run("local-to-s3", "--data-dir", str(small_data_dir.root), "--env-file", str(env_list),
                 "--no-cutover", "--state", str(tmp_path / "j.sqlite3"))
    assert result.exit_code == 2 and "STORAGE_AWS_FOLDER" in result.stderr, result.output
    assert result.stderr.count("lsmigrate: error: ") == 1, result.stderr
    assert s3_bucket.client().list_objects_v2(Bucket=s3_bucket.name).get("KeyCount", 0) == 0
    assert not pwned.exists() and not Path(pwned.name).exists()
