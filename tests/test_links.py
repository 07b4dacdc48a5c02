"""Symlinked trees: `media/upload` on another disk (volume and PVC layouts) is copied with --copy-links/-L,
and refused without it by a message that names the flag; links back into the tree are not copied twice;
loops end; keys stay in listing order."""

from __future__ import annotations

import json
import random

from lsdata import make_data_dir
from s3util import all_objects, run

from lsmigrate.scan import LocalFile, Problem, scan_local


def _keys(bucket, folder: str) -> set[str]:
    return {key[len(folder) + 1:] for key in all_objects(bucket.client(), bucket.name, f"{folder}/")}


def _upload_on_another_disk(tmp_path):
    """A data dir whose media/upload is a link to /disk2/upload, the layout of a second volume."""
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=4, odd_names=False)
    disk2 = tmp_path / "disk2"
    disk2.mkdir()
    (data.media / "upload").rename(disk2 / "upload")
    (data.media / "upload").symlink_to(disk2 / "upload")
    return data


def test_upload_on_another_disk_is_refused_naming_the_flag_then_copied_with_it(s3_env, s3_bucket, tmp_path):
    data = _upload_on_another_disk(tmp_path)
    endpoint = ("--endpoint-url", s3_bucket.endpoint_url)
    refused = run("plan", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/m", *endpoint, "--json")
    assert refused.exit_code == 1, refused.output
    problems = json.loads(refused.stdout)["problems"]
    assert [p["path"] for p in problems] == ["upload"] and problems[0]["error"]
    assert "outside the source tree" in problems[0]["reason"] and "--copy-links" in problems[0]["reason"]

    planned = run("plan", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/m", *endpoint, "-L", "--json")
    assert planned.exit_code == 0, planned.output
    doc = json.loads(planned.stdout)
    assert doc["problems"] == [] and doc["to_copy"]["files"] == len(data.files)

    copied = run("local-to-s3", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/m", *endpoint,
                 "--copy-links", "--no-cutover", "--json")
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.stdout)["verify"]["clean"]
    assert _keys(s3_bucket, "m") == set(data.files)
    for rel in data.files:
        body = s3_bucket.client().get_object(Bucket=s3_bucket.name, Key=f"m/{rel}")["Body"].read()
        assert body == (tmp_path / "disk2" / rel).read_bytes() if rel.startswith("upload/") else data.path(rel).read_bytes()


def test_links_back_into_the_tree_are_copied_once_at_their_real_place(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False, empty_files=False)
    real = sorted(rel for rel in data.files if rel.startswith("upload/1/"))[0]
    (data.media / "upload" / "1" / "again.jpg").symlink_to(data.path(real))  # a file
    (data.media / "avatars-too").symlink_to(data.media / "avatars")  # a directory
    (data.media / "export" / "all").symlink_to(data.media)  # the top of the tree
    result = run("copy", str(data.root), f"{s3_bucket.url}/once", "--endpoint-url", s3_bucket.endpoint_url, "-L",
                 "--json")
    assert result.exit_code == 0, result.output  # skipped, not failed: every file is there once
    doc = json.loads(result.stdout)
    assert _keys(s3_bucket, "once") == set(data.files)
    assert doc["copied"] == len(data.files) and doc["warnings"] == 3
    reasons = {item["path"]: item["reason"] for item in doc["failures"]}
    end = " in the source tree, copied from there (not twice)"
    assert reasons == {"upload/1/again.jpg": f"skipped: symlink to {real}{end}",
                       "avatars-too/": f"skipped: symlink to avatars/{end}",
                       "export/all/": "skipped: symlink to the top of the source tree, copied from there (not twice)"}


def test_a_loop_through_a_linked_disk_ends_and_keys_stay_in_listing_order(tmp_path):
    media, disk2 = tmp_path / "media", tmp_path / "disk2"
    (disk2 / "a" / "b").mkdir(parents=True)
    (disk2 / "a" / "side.txt").write_text("side")
    (disk2 / "a" / "b" / "x.txt").write_text("x")
    (disk2 / "a" / "b" / "back").symlink_to(disk2 / "a")  # a/b/back/b/back/... for ever, if followed blindly
    media.mkdir()
    names = ["up", "up-x.txt", "up.txt", "up0", "upper/f.txt", "é.txt"]
    random.Random(3).shuffle(names)
    for name in names:
        if name != "up":
            (media / name).parent.mkdir(parents=True, exist_ok=True)
            (media / name).write_text(name)
    (media / "up").symlink_to(disk2 / "a" / "b")
    items = list(scan_local(media, copy_links=True))
    rels = [item.rel for item in items]
    assert rels == sorted(rels) == sorted(rels, key=lambda rel: rel.encode("utf-8"))
    files = {item.rel for item in items if isinstance(item, LocalFile)}
    assert files == {"up-x.txt", "up.txt", "up0", "upper/f.txt", "é.txt", "up/x.txt", "up/back/side.txt"}
    loops = [item for item in items if isinstance(item, Problem)]
    assert [(p.rel, p.error) for p in loops] == [("up/back/b/", False)] and "symlink loop" in loops[0].reason


def test_a_linked_media_folder_is_the_tree_and_an_unmounted_one_is_named(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False)
    pvc = tmp_path / "pvc" / "media"
    pvc.parent.mkdir()
    data.media.rename(pvc)
    data.media.symlink_to(pvc)  # the root itself: followed without -L
    copied = run("copy", str(data.root), f"{s3_bucket.url}/pvc", "--endpoint-url", s3_bucket.endpoint_url, "--json")
    assert copied.exit_code == 0, copied.output
    assert _keys(s3_bucket, "pvc") == set(data.files)

    pvc.rename(tmp_path / "pvc" / "elsewhere")  # the volume is not mounted
    for args in (("plan", "--data-dir", str(data.root)), ("local-to-s3", "--data-dir", str(data.root), "--no-cutover")):
        result = run(*args, "--to", f"{s3_bucket.url}/pvc", "--endpoint-url", s3_bucket.endpoint_url)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [f"lsmigrate: error: {data.media} is a symlink to {pvc}, which is not a "
                                              "directory here (is that disk mounted?)"]
