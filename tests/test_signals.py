"""Streams, exit codes and signals, with real processes: Ctrl-C and SIGTERM stop a throttled copy within
seconds with one line and the resume hint, a second Ctrl-C exits at once, "n" at the prompt is not success,
-q says nothing on success, and per-file failures go to stderr while the summary stays on stdout."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time

import pytest
from lsdata import make_data_dir
from s3util import all_objects, run, spawn

MiB = 1024 * 1024
RESUME = "run the same command again to resume"


def _throttled_copy(bucket, tmp_path, folder: str):
    """A copy at --bwlimit 50KiB of one tiny file and three of 2 MiB, started and past its first two files (the
    limit charges a request after it: one 2 MiB file goes at once, the other two wait about 41 and 82 s)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-first.txt").write_bytes(b"tiny")
    for name in ("b.bin", "c.bin", "d.bin"):
        (src / name).write_bytes(os.urandom(2 * MiB))
    args = ("copy", str(src), f"{bucket.url}/{folder}", "--endpoint-url", bucket.endpoint_url, "--bwlimit", "50KiB",
            "--state", str(tmp_path / "journal.sqlite3"))
    proc = spawn(*args, text=True)
    deadline = time.monotonic() + 60
    while len(all_objects(bucket.client(), bucket.name, f"{folder}/")) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the copy never started sending"
        time.sleep(0.05)
    return proc, args


def _stopped(proc, *signals: int, gap: float = 0.0) -> tuple[int, str, str, float]:
    """Send the signals (`gap` s apart); (exit code, stdout, stderr, seconds from the first to the exit)."""
    started = time.monotonic()
    for n, number in enumerate(signals):
        if n:
            time.sleep(gap)
        proc.send_signal(number)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running 20 s after the signal; stderr: {err[-1000:]!r}")
    return proc.returncode, out, err, time.monotonic() - started


def _clean(out: str, err: str) -> None:
    for text in (out, err):
        assert "Traceback" not in text and 'File "' not in text and "Unclosed" not in text, text


@pytest.mark.parametrize(("number", "code", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                      (signal.SIGTERM, 143, "terminated")])
def test_a_signal_stops_a_throttled_copy_within_seconds_and_the_same_command_resumes(
        s3_env, s3_bucket, tmp_path, number, code, word):
    proc, args = _throttled_copy(s3_bucket, tmp_path, "sig")
    exit_code, out, err, seconds = _stopped(proc, number)
    _clean(out, err)
    assert exit_code == code, (exit_code, out, err)
    assert seconds < 3, f"took {seconds:.1f} s to stop (each throttled file waits about 41 s)"
    assert err.splitlines() == [f"lsmigrate: {word}; {RESUME}"] and out == ""

    again = run(*args[:-4], *args[-2:], "--json")  # the same command without --bwlimit
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert doc["skipped"] == 2 and doc["copied"] == 2, "the files sent before the stop were journaled"


def test_a_second_ctrl_c_exits_at_once_without_a_traceback(s3_env, s3_bucket, tmp_path):
    proc, _ = _throttled_copy(s3_bucket, tmp_path, "twice")
    exit_code, out, err, seconds = _stopped(proc, signal.SIGINT, signal.SIGINT, gap=0.02)
    _clean(out, err)
    assert exit_code == 130 and seconds < 3, (exit_code, seconds, err)
    assert err.splitlines() == [f"lsmigrate: interrupted; {RESUME}"]


def test_answering_n_at_the_prompt_changes_nothing_and_exits_1(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)
    url = f"{s3_bucket.url}/media"
    assert run("copy", str(data.root), url, "--endpoint-url", s3_bucket.endpoint_url, "-q").exit_code == 0
    env_list = tmp_path / "env.list"
    env_list.write_text("LABEL_STUDIO_HOST=https://labels.example.org\n")
    master, slave = pty.openpty()  # a terminal on stdin, so cutover asks
    try:
        proc = subprocess.Popen([sys.executable, "-m", "lsmigrate.cli", "cutover", "--data-dir", str(data.root),
                                 "--to", url, "--endpoint-url", s3_bucket.endpoint_url, "--env-file", str(env_list)],
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(master, b"n\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    _clean(out, err)
    assert "Switch " in err and "[y/N]" in err, err
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert err.rstrip().endswith("lsmigrate: error: not switched, as answered; nothing was changed"), err
    assert env_list.read_text() == "LABEL_STUDIO_HOST=https://labels.example.org\n"
    assert not list(tmp_path.glob("env.list.lsmigrate-backup-*"))


def test_quiet_prints_nothing_at_all_on_success(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)
    endpoint = ("--endpoint-url", s3_bucket.endpoint_url)
    for args in (("copy", str(data.root), f"{s3_bucket.url}/q", *endpoint),
                 ("verify", str(data.root), f"{s3_bucket.url}/q", *endpoint),
                 ("sync", str(data.root), f"{s3_bucket.url}/s", *endpoint),
                 ("local-to-s3", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/l", *endpoint)):
        result = run(*args, "-q")
        assert result.exit_code == 0, (args[0], result.output)
        assert (result.stdout, result.stderr) == ("", ""), args[0]


def test_per_file_failures_go_to_stderr_and_the_summary_to_stdout(s3_env, s3_bucket, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.txt").write_text("good")
    (src / "broken.txt").symlink_to(src / "nowhere")
    for quiet in ((), ("-q",)):  # -q hides nothing when something failed
        result = run("copy", str(src), f"{s3_bucket.url}/f", "--endpoint-url", s3_bucket.endpoint_url, *quiet)
        assert result.exit_code == 1, result.output
        assert result.stderr.splitlines() == [f"broken.txt: broken symlink ({src / 'nowhere'})"]
        assert "broken.txt" not in result.stdout
        assert "failed 1 in" in result.stdout and "verified by: " in result.stdout
