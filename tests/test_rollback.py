"""`cutover --rollback` is a stack: each run undoes one switch, back to the original (promise 3)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from s3util import run

from lsmigrate.deployment.backups import latest_backup, rollback, write_with_backup
from lsmigrate.deployment.compose import update_compose_text
from lsmigrate.deployment.envfile import update_env_text
from lsmigrate.deployment.helm import update_helm_values_text
from lsmigrate.deployment.text import DeploymentFileError


def _listing(path: Path) -> dict:
    from lsmigrate.deployment import backups  # here, so that the other tests run (and fail) without it

    return backups.listing(path)


T1 = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
T2, T3 = T1 + timedelta(hours=1), T1 + timedelta(hours=2)
OLD_SECRET = "oldSecretValue/abcdefghij+KLMNOP=="
NEW_SECRET = "newSecretValue/qrstuvwxyz+ABCDEF=="
ORIGINAL = f"# Label Studio\nSTORAGE_TYPE=volume\nSTORAGE_AWS_SECRET_ACCESS_KEY={OLD_SECRET}\nDJANGO_DB=default\n"


def _env_list(tmp_path: Path, text: str = ORIGINAL, mode: int = 0o640) -> Path:
    path = tmp_path / "env.list"
    path.write_text(text)
    path.chmod(mode)
    return path


def _switch(path: Path, changes: dict[str, str | None], when: datetime) -> str:
    new = update_env_text(path.read_text(), changes, name=path.name)
    write_with_backup(path, new, now=when)
    return new


def _three_switches(path: Path) -> list[str]:
    """original -> bucket a -> bucket b -> bucket c; the file's text at each step."""
    steps = [path.read_text()]
    steps.append(_switch(path, {"STORAGE_TYPE": "s3", "STORAGE_AWS_BUCKET_NAME": "a",
                                "STORAGE_AWS_SECRET_ACCESS_KEY": NEW_SECRET}, T1))
    steps.append(_switch(path, {"STORAGE_AWS_BUCKET_NAME": "b"}, T2))
    steps.append(_switch(path, {"STORAGE_AWS_BUCKET_NAME": "c", "STORAGE_AWS_FOLDER": ""}, T3))
    return steps


def test_each_rollback_steps_back_one_switch_to_the_original(tmp_path):
    path = _env_list(tmp_path)
    steps = _three_switches(path)
    for expected in reversed(steps[:-1]):
        rollback(path)
        assert path.read_text() == expected
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert latest_backup(path) is None
    with pytest.raises(DeploymentFileError) as exc:
        rollback(path)
    assert "no recorded lsmigrate switch" in str(exc.value) and "are kept" in str(exc.value)
    assert path.read_text() == ORIGINAL
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["env.list", "env.list.lsmigrate-backup-20250304T050607Z",
                    "env.list.lsmigrate-backup-20250304T060607Z", "env.list.lsmigrate-backup-20250304T070607Z"]


def test_the_clock_going_back_does_not_reorder_the_stack(tmp_path):
    path = _env_list(tmp_path)
    first = _switch(path, {"STORAGE_TYPE": "s3"}, T2)
    _switch(path, {"STORAGE_AWS_BUCKET_NAME": "b"}, T1)  # an hour earlier by the clock, yet the newer switch
    assert latest_backup(path).name == "env.list.lsmigrate-backup-20250304T060607Z-1"
    rollback(path)
    assert path.read_text() == first
    rollback(path)
    assert path.read_text() == ORIGINAL


def test_list_shows_each_switch_newest_first_with_secrets_masked(tmp_path):
    path = _env_list(tmp_path)
    _three_switches(path)
    doc = _listing(path)
    assert [s["summary"] for s in doc["switches"]] == [
        'STORAGE_AWS_BUCKET_NAME b -> c, STORAGE_AWS_FOLDER -> ""',
        "STORAGE_AWS_BUCKET_NAME a -> b",
        "STORAGE_TYPE volume -> s3, STORAGE_AWS_SECRET_ACCESS_KEY *** -> ***, STORAGE_AWS_BUCKET_NAME -> a",
    ]
    assert [s["time"] for s in doc["switches"]] == ["2025-03-04T07:06:07Z", "2025-03-04T06:06:07Z",
                                                    "2025-03-04T05:06:07Z"]
    assert doc["switches"][0]["state"] == "in effect"

    text = run("cutover", "--rollback", "--list", "--env-file", str(path))
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == f"Switches of {path} that --rollback undoes, newest first:"
    assert lines[1] == (f"  2025-03-04 07:06:07 UTC  {tmp_path}/env.list.lsmigrate-backup-20250304T070607Z  "
                        'STORAGE_AWS_BUCKET_NAME b -> c, STORAGE_AWS_FOLDER -> ""')
    assert lines[3].startswith("  2025-03-04 05:06:07 UTC  ") and len(lines) == 4
    as_json = json.loads(run("cutover", "--rollback", "--list", "--json", "--env-file", str(path)).stdout)
    assert as_json == json.loads(json.dumps(doc))
    assert as_json["switches"][2]["changes"][1] == {"name": "STORAGE_AWS_SECRET_ACCESS_KEY", "old": "***",
                                                    "new": "***"}
    for where in [text.output, json.dumps(as_json), *(p.read_text() for p in tmp_path.glob("*.json"))]:
        assert OLD_SECRET not in where and NEW_SECRET not in where, "records and listings hold no secret"
    for record in tmp_path.glob("*.json"):
        assert stat.S_IMODE(record.stat().st_mode) == 0o640, "a record is as private as the file"
    assert path.read_text().endswith("STORAGE_AWS_FOLDER=\n"), "--list changed nothing"


def test_list_names_what_compose_and_helm_switches_changed(tmp_path):
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  app:\n    image: heartexlabs/label-studio\n    environment:\n"
                       "      - DJANGO_DB=default\n      - STORAGE_AWS_SECRET_ACCESS_KEY=" + OLD_SECRET + "\n")
    write_with_backup(compose, update_compose_text(compose.read_text(), {
        "STORAGE_TYPE": "s3", "STORAGE_AWS_SECRET_ACCESS_KEY": NEW_SECRET}), now=T1)
    assert _listing(compose)["switches"][0]["summary"] == (
        "STORAGE_AWS_SECRET_ACCESS_KEY *** -> ***, STORAGE_TYPE -> s3")
    values = tmp_path / "ls-values.yaml"
    values.write_text("global:\n  persistence:\n    type: volume\n")
    write_with_backup(values, update_helm_values_text(values.read_text(), {
        "global.persistence.type": "s3", "global.persistence.config.s3.bucket": "b",
        "global.persistence.config.s3.secretKey": NEW_SECRET}), now=T1)
    assert _listing(values)["switches"][0]["summary"] == (
        "global.persistence.type volume -> s3, global.persistence.config.s3.bucket -> b, "
        "global.persistence.config.s3.secretKey -> ***")
    for record in tmp_path.glob("*.json"):
        assert OLD_SECRET not in record.read_text() and NEW_SECRET not in record.read_text()


def test_rollback_over_hand_edits_refuses_naming_the_lines_unless_forced(tmp_path):
    path = _env_list(tmp_path)
    switched = _switch(path, {"STORAGE_TYPE": "s3", "STORAGE_AWS_BUCKET_NAME": "a"}, T1)
    edited = switched.replace("STORAGE_AWS_BUCKET_NAME=a", "STORAGE_AWS_BUCKET_NAME=by-hand")
    edited = edited.replace("DJANGO_DB=default\n", "") + f"EXTRA_SECRET_KEY={NEW_SECRET}\n"
    path.write_text(edited)

    result = run("cutover", "--rollback", "--env-file", str(path))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    message = result.stderr
    assert f"{path} was edited since lsmigrate switched it at 2025-03-04 05:06:07 UTC" in message
    assert ("(line 4 (STORAGE_AWS_BUCKET_NAME), line 5 (EXTRA_SECRET_KEY), a line removed after line 3 "
            "(DJANGO_DB)); rolling back would undo those edits") in message and "--force" in message
    assert NEW_SECRET not in message and "by-hand" not in message, "lines are named, never shown"
    assert path.read_text() == edited, "nothing changed"

    forced = run("cutover", "--rollback", "--force", "--json", "--env-file", str(path))
    assert forced.exit_code == 0, forced.output
    doc = json.loads(forced.stdout)
    assert doc["state"] == "edited since" and doc["remaining"] == 0 and doc["restored_from"].endswith("050607Z")
    assert path.read_text() == ORIGINAL


def test_hand_edits_between_two_switches_stop_the_rollback_that_would_undo_them(tmp_path):
    path = _env_list(tmp_path)
    _switch(path, {"STORAGE_TYPE": "s3", "STORAGE_AWS_BUCKET_NAME": "a"}, T1)
    path.write_text(path.read_text().replace("DJANGO_DB=default", "DJANGO_DB=edited"))
    hand_edited = path.read_text()
    _switch(path, {"STORAGE_AWS_BUCKET_NAME": "b"}, T2)
    rollback(path)
    assert path.read_text() == hand_edited
    with pytest.raises(DeploymentFileError) as exc:
        rollback(path)
    assert "line 4 (DJANGO_DB)" in str(exc.value)
    assert path.read_text() == hand_edited
    rollback(path, force=True)
    assert path.read_text() == ORIGINAL


def test_a_deleted_file_is_restored_and_list_and_force_need_rollback(tmp_path):
    path = _env_list(tmp_path)
    _switch(path, {"STORAGE_TYPE": "s3"}, T1)
    path.unlink()
    result = run("cutover", "--rollback", "--env-file", str(path))
    assert result.exit_code == 0 and path.read_text() == ORIGINAL, result.output
    assert "This was the last recorded switch." in result.stdout
    assert run("cutover", "--list", "--env-file", str(path)).exit_code == 2
    assert run("cutover", "--force", "--env-file", str(path)).exit_code == 2


def test_an_unreadable_record_stops_the_rollback_with_one_line(tmp_path):
    path = _env_list(tmp_path)
    backup = write_with_backup(path, "STORAGE_TYPE=s3\n", now=T1)
    record = backup.with_name(backup.name + ".json")
    record.write_text("{not json")
    result = run("cutover", "--rollback", "--env-file", str(path))
    assert result.exit_code == 2 and "unreadable record" in result.stderr and str(record) in result.stderr
    assert path.read_text() == "STORAGE_TYPE=s3\n"


# -------------------------------------------------------------------------------------- crashes (kill -9)

_DIE = """
import os, pathlib, sys
from lsmigrate.deployment import backups
target, action = sys.argv[1], sys.argv[2]
real_replace, real_unlink = os.replace, pathlib.Path.unlink
def replace(src, dst, *args, **kwargs):
    if action == "switch" and os.fspath(dst) == target:
        os._exit(9)
    return real_replace(src, dst, *args, **kwargs)
def unlink(self, *args, **kwargs):
    if action == "rollback" and self.name.endswith(".json"):
        os._exit(9)
    return real_unlink(self, *args, **kwargs)
os.replace, pathlib.Path.unlink = replace, unlink
if action == "switch":
    backups.write_with_backup(target, "STORAGE_TYPE=s3\\n")
else:
    backups.rollback(target)
"""


def _die_during(action: str, path: Path) -> None:
    script = textwrap.dedent(_DIE)
    done = subprocess.run([sys.executable, "-c", script, str(path.resolve()), action], capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 9, done.stderr


def test_a_switch_killed_before_the_file_was_replaced_is_dropped_not_undone(tmp_path):
    path = _env_list(tmp_path)
    _die_during("switch", path)
    assert path.read_text() == ORIGINAL
    listed = _listing(path)["switches"]
    assert len(listed) == 1 and listed[0]["state"] == "not in effect"
    assert "[not in effect]" in run("cutover", "--rollback", "--list", "--env-file", str(path)).stdout
    result = run("cutover", "--rollback", "--env-file", str(path))
    assert result.exit_code == 0 and "already held what it held before the switch" in result.stdout
    assert path.read_text() == ORIGINAL and _listing(path)["switches"] == []


def test_a_rollback_killed_after_restoring_is_finished_by_running_it_again(tmp_path):
    path = _env_list(tmp_path)
    steps = _three_switches(path)
    _die_during("rollback", path)
    assert path.read_text() == steps[2], "restored, the record not yet dropped"
    result = run("cutover", "--rollback", "--env-file", str(path))
    assert result.exit_code == 0 and "already held" in result.stdout and "2 earlier switch(es)" in result.stdout
    assert path.read_text() == steps[2]
    rollback(path)
    assert path.read_text() == steps[1]
    rollback(path)
    assert path.read_text() == ORIGINAL
