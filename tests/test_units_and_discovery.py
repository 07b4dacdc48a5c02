"""Pure pieces: sizes, Label Studio discovery, target parsing, scan order, the plan diff, the journal."""

from __future__ import annotations

import os
import random

import pytest

from lsmigrate import endpoints
from lsmigrate.checksum import digest_file, multipart_etag, part_count
from lsmigrate.engine.sizes import part_size_for
from lsmigrate.journal import Journal, default_path
from lsmigrate.labelstudio import NotADataDir, category, default_base_data_dir, find_data_dir, get_env
from lsmigrate.outcome import Outcome
from lsmigrate.plan import plan
from lsmigrate.scan import LocalFile, Problem, RemoteObject, scan_local
from lsmigrate.target import TargetError
from lsmigrate.units import parse_size

MiB = 1024 * 1024


@pytest.mark.parametrize("text", ["8MiB", "8Mi", "8M", "8MB", "8388608", "8 mib", "0.0078125GiB"])
def test_sizes_all_mean_the_same(text):
    assert parse_size(text) == 8 * MiB


@pytest.mark.parametrize("text", ["", "eight", "8XB", "-1M", "1.5"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_get_env_precedence_is_label_studio_s():
    env = {"STORAGE_TYPE": "gcs", "HEARTEX_STORAGE_TYPE": "azure", "LABEL_STUDIO_STORAGE_TYPE": "s3"}
    assert get_env("STORAGE_TYPE", env) == "s3"
    del env["LABEL_STUDIO_STORAGE_TYPE"]
    assert get_env("STORAGE_TYPE", env) == "azure"


def test_base_data_dir_defaults(tmp_path):
    assert default_base_data_dir({"BASE_DATA_DIR": "/x", "HEARTEX_BASE_DATA_DIR": "/y"}) == default_base_data_dir(
        {"HEARTEX_BASE_DATA_DIR": "/y"}).parent / "y"
    assert str(default_base_data_dir({"XDG_DATA_HOME": "/d"})) == "/d/label-studio"
    assert str(default_base_data_dir({"HOME": "/h"})) == "/h/.local/share/label-studio"


def test_find_data_dir_refuses_what_is_not_label_studio(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotADataDir, match="not a Label Studio data dir"):
        find_data_dir(tmp_path / "plain")
    with pytest.raises(NotADataDir, match="does not exist"):
        find_data_dir(tmp_path / "missing")
    (tmp_path / "ls" / "media").mkdir(parents=True)
    with pytest.raises(NotADataDir, match="pass its parent"):
        find_data_dir(tmp_path / "ls" / "media")
    assert find_data_dir(tmp_path / "ls").media == tmp_path / "ls" / "media"
    assert find_data_dir(None, {"LABEL_STUDIO_BASE_DATA_DIR": str(tmp_path / "ls")}).base == tmp_path / "ls"


@pytest.mark.parametrize("rel,expected", [
    ("upload/3/ab-x.jpg", "uploads/3"), ("upload/ab-x.jpg", "uploads/(flat legacy names)"),
    ("avatars/a.png", "avatars"), ("export/1/p.json", "exports"), ("tmp/x", "other"),
])
def test_categories(rel, expected):
    assert category(rel) == expected


def test_target_urls():
    t = endpoints.parse_url("s3://bucket/some/folder/")
    assert (t.provider, t.bucket, t.folder, t.key("a b.jpg")) == ("s3", "bucket", "some/folder", "some/folder/a b.jpg")
    assert endpoints.parse_url("gs://bkt").folder == "" and endpoints.parse_url("az://ctr/f").provider == "azure"
    for bad in ("http://x/y", "s3://", "bucket/folder", "s3://key:secret@bucket/x", "s3://$(reboot)/x",
                "gs://UPPER/x", "az://a--b/x", "az://c/f"):
        with pytest.raises(TargetError):
            endpoints.parse_url(bad)


def test_target_from_label_studio_settings_hides_secrets():
    target = endpoints.from_settings({
        "STORAGE_TYPE": "s3", "STORAGE_AWS_BUCKET_NAME": "bkt", "STORAGE_AWS_FOLDER": "/ls/",
        "STORAGE_AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "STORAGE_AWS_ACCESS_KEY_ID": "AKIA",
        "STORAGE_AWS_OBJECT_PARAMETERS": '{"ServerSideEncryption": "aws:kms"}',
    })
    assert target.url == "s3://bkt/ls" and target.secret_key == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(target)
    assert endpoints.from_settings({}) is None
    with pytest.raises(TargetError, match="STORAGE_AWS_BUCKET_NAME"):
        endpoints.from_settings({"STORAGE_TYPE": "s3"})
    with pytest.raises(TargetError, match="not valid JSON"):
        endpoints.from_settings({"STORAGE_TYPE": "s3", "STORAGE_AWS_BUCKET_NAME": "bkt",
                                 "STORAGE_AWS_OBJECT_PARAMETERS": "{oops"})


def test_helm_existing_secret_asks_for_the_variable():
    persistence = {"type": "s3", "config": {"s3": {"bucket": "bkt", "region": "eu-west-1",
                                                   "accessKeyExistingSecret": "ls-s3", "secretKeyExistingSecret": "ls-s3"}}}
    target = endpoints.from_helm_persistence(persistence, {})
    assert target.bucket == "bkt" and target.region == "eu-west-1"
    assert any("STORAGE_AWS_SECRET_ACCESS_KEY" in note for note in target.notes)
    with_env = endpoints.from_helm_persistence(persistence, {"STORAGE_AWS_SECRET_ACCESS_KEY": "x"})
    assert with_env.secret_key == "x"
    assert endpoints.from_helm_persistence({"type": "volume"}, {}) is None


def _make_tree(root, names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())


def test_scan_order_is_the_object_listing_order(tmp_path):
    names = ["a/b", "a-b", "a.b/c", "a/c/d", "ab", "A", "é", "z/日本.txt", "a b", "a+b", "a#b", "0"]
    random.Random(1).shuffle(names)
    _make_tree(tmp_path, names)
    got = [item.rel for item in scan_local(tmp_path)]
    assert got == sorted(names) == sorted(names, key=lambda n: n.encode("utf-8"))


def test_scan_reports_special_files_and_symlinks(tmp_path):
    _make_tree(tmp_path, ["in/real.txt"])
    os.mkfifo(tmp_path / "in" / "pipe")
    (tmp_path / "in" / "link-inside").symlink_to(tmp_path / "in" / "real.txt")
    (tmp_path / "in" / "dirlink").symlink_to(tmp_path / "in")
    items = {item.rel: item for item in scan_local(tmp_path)}
    assert isinstance(items["in/link-inside"], LocalFile) and items["in/link-inside"].size == len(b"in/real.txt")
    assert isinstance(items["in/pipe"], Problem) and not items["in/pipe"].error
    assert isinstance(items["in/dirlink"], Problem) and not items["in/dirlink"].error


def _local(rel, size=1, mtime=1):
    return LocalFile(rel, size, mtime, "/" + rel)


def test_plan_diff(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.mark_verified("same", 1, 1, "m", "e1")
        journal.mark_verified("touched", 1, 1, "m", "e1")
        local = [_local("missing"), _local("same"), _local("size", 2), _local("touched", 1, 2), _local("unknown")]
        remote = [RemoteObject("extra", 5), RemoteObject("same", 1, "e1"), RemoteObject("size", 1, "x"),
                  RemoteObject("touched", 1, "e1"), RemoteObject("unknown", 1, "e9")]
        actions = {a.rel: a.do for a in plan(iter(local), iter(remote), journal.records())}
    assert actions == {"missing": Outcome.COPY, "same": Outcome.SKIP, "size": Outcome.COPY, "touched": Outcome.CHECK,
                       "unknown": Outcome.CHECK, "extra": Outcome.EXTRA}


def test_plan_without_listing_trusts_only_the_journal(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.mark_verified("same", 1, 1, "m", "e1")
        journal.mark_verified("touched", 1, 1, "m", "e1")
        journal.mark_verified("gone-locally", 1, 1, "m", "e1")
        journal.start_upload("half", 9, 1, "ab", "upload-1", 5)
        local = [_local("half", 9), _local("new"), _local("same"), _local("size", 2), _local("touched", 1, 2),
                 Problem("weird", "a socket")]
        journal.mark_verified("size", 1, 1, "m", "e1")
        actions = {a.rel: (a.do, a.reason) for a in plan(iter(local), None, journal.records())}
    assert {rel: do for rel, (do, _) in actions.items()} == {
        "half": Outcome.COPY, "new": Outcome.COPY, "same": Outcome.SKIP, "size": Outcome.COPY, "touched": Outcome.COPY, "weird": Outcome.PROBLEM}
    assert actions["half"][1] == "resume interrupted upload"
    assert "not listed" in actions["same"][1]


def test_journal_survives_reopen_and_default_place(tmp_path):
    path = default_path("/src", "s3://b/f", {"XDG_STATE_HOME": str(tmp_path)})
    assert path.parent == tmp_path / "lsmigrate"
    with Journal(path) as journal:
        journal.start_upload("big", 10, 5, "ab", "upload-1", 5)
        journal.part_done("big", 1, "m1", "e1")
    with Journal(path) as journal:
        assert journal.get("big").upload_id == "upload-1"
        assert journal.parts("big") == {1: ("m1", "e1")}
        journal.mark_verified("big", 10, 5, "ab", "etag-2")
        assert journal.get("big").verified and journal.parts("big") == {}


def test_corrupted_journal_is_a_clear_error(tmp_path):
    from lsmigrate.journal import JournalError

    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="move it aside"):
        Journal(bad)


def test_multipart_arithmetic(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(11 * MiB))
    digests = digest_file(str(path), 5 * MiB)
    assert len(digests.parts) == 3 and digests.size == 11 * MiB
    etag = multipart_etag(digests.parts)
    assert part_count(etag) == 3 and part_count(digests.md5.hex()) == 0
    assert part_size_for(100 * 1024 * MiB, 5 * MiB, min_part=5 * MiB, max_parts=10_000) == 11 * MiB
    assert part_size_for(10 * MiB, 1 * MiB, min_part=5 * MiB, max_parts=10_000) == 5 * MiB
