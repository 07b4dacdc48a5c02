"""`lsmigrate cutover` on real-looking env.list, docker-compose.yml and Helm values files."""

from __future__ import annotations

import json
import os

import pytest
from lsdata import make_data_dir
from s3util import run

ENV_LIST = """# Label Studio production settings
LABEL_STUDIO_HOST=https://labels.example.org
DJANGO_DB=default
POSTGRE_PASSWORD="p@ss word"   
export LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true

# storage: local volume for now
"""

COMPOSE = """version: "3.9"
services:
  nginx:
    image: heartexlabs/label-studio:latest
    command: nginx
  app:
    image: heartexlabs/label-studio:1.13.1
    # the application itself
    environment:
      - DJANGO_DB=default
      - POSTGRE_NAME=postgres   # database
      - LABEL_STUDIO_HOST=${LABEL_STUDIO_HOST:-}
    volumes:
      - ./mydata:/label-studio/data:rw
  db:
    image: postgres:11.5
"""

VALUES = """# Label Studio chart values
global:
  image:
    repository: heartexlabs/label-studio
  # persistence of uploads
  persistence:
    enabled: true
    type: volume
    config:
      s3:
        accessKeyExistingSecret: "ls-s3-credentials"
        accessKeyExistingSecretKey: "accesskey"
        secretKeyExistingSecret: "ls-s3-credentials"
        secretKeyExistingSecretKey: "secretkey"
app:
  replicas: 2
"""


@pytest.fixture
def migrated(s3_env, s3_bucket, tmp_path):
    """A data dir already copied to the bucket (journal written)."""
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=10)
    result = run("copy", str(data.root), f"{s3_bucket.url}/media", "--endpoint-url", s3_bucket.endpoint_url, "-q")
    assert result.exit_code == 0, result.output
    return data


def _cutover(data, bucket, *args):
    return run("cutover", "--data-dir", str(data.root), "--to", f"{bucket.url}/media",
               "--endpoint-url", bucket.endpoint_url, *args)


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    old, new = before.splitlines(), after.splitlines()
    return [line for line in old if line not in new], [line for line in new if line not in old]


def test_env_list_cutover_changes_only_storage_keys_then_rollback(migrated, s3_bucket, tmp_path):
    env_list = tmp_path / "env.list"
    env_list.write_text(ENV_LIST)
    env_list.chmod(0o640)
    result = _cutover(migrated, s3_bucket, "--env-file", str(env_list), "--yes")
    assert result.exit_code == 0, result.output
    after = env_list.read_text()
    removed, added = _changed_lines(ENV_LIST, after)
    assert removed == []
    assert added == ["STORAGE_TYPE=s3", f"STORAGE_AWS_BUCKET_NAME={s3_bucket.name}", "STORAGE_AWS_FOLDER=media",
                     f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}"]
    assert after.startswith(ENV_LIST)  # every original line, byte for byte, in place
    assert oct(env_list.stat().st_mode & 0o777) == "0o640"
    backups = [p for p in tmp_path.glob("env.list.lsmigrate-backup-*") if p.suffix != ".json"]
    assert len(backups) == 1 and backups[0].read_text() == ENV_LIST
    assert backups[0].with_name(backups[0].name + ".json").is_file(), "the switch is recorded next to its backup"

    back = run("cutover", "--rollback", "--env-file", str(env_list))
    assert back.exit_code == 0 and env_list.read_bytes() == ENV_LIST.encode()


def test_compose_cutover_list_form(migrated, s3_bucket, tmp_path):
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    result = _cutover(migrated, s3_bucket, "--compose", str(compose), "--yes", "--no-nginx")
    assert result.exit_code == 0, result.output
    removed, added = _changed_lines(COMPOSE, compose.read_text())
    assert removed == []
    assert [line.strip() for line in added] == [
        "- STORAGE_TYPE=s3", f"- STORAGE_AWS_BUCKET_NAME={s3_bucket.name}", "- STORAGE_AWS_FOLDER=media",
        f"- STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}", "- USE_NGINX_FOR_UPLOADS=false",
        "- USE_NGINX_FOR_EXPORT_DOWNLOADS=false"]
    assert run("cutover", "--rollback", "--compose", str(compose)).exit_code == 0
    assert compose.read_text() == COMPOSE


def test_helm_values_keep_secret_references(migrated, s3_bucket, tmp_path):
    values = tmp_path / "ls-values.yaml"
    values.write_text(VALUES)
    result = _cutover(migrated, s3_bucket, "--values", str(values), "--region", "us-east-1", "--yes", "--json")
    assert result.exit_code == 0, result.output
    text = values.read_text()
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(text)
    persistence = data["global"]["persistence"]
    assert persistence["type"] == "s3" and persistence["enabled"] is True
    s3 = persistence["config"]["s3"]
    assert s3["bucket"] == s3_bucket.name and s3["region"] == "us-east-1" and s3["folder"] == "media"
    assert "accessKey" not in s3 and "secretKey" not in s3 and s3["secretKeyExistingSecret"] == "ls-s3-credentials"
    assert "# persistence of uploads" in text and "# Label Studio chart values" in text
    assert data["app"] == {"replicas": 2}
    doc = json.loads(result.stdout)
    assert any("PVC" in step for step in doc["next_steps"])


def test_refuses_when_an_object_is_missing_or_a_new_file_appeared(migrated, s3_bucket, tmp_path):
    env_list = tmp_path / "env.list"
    env_list.write_text(ENV_LIST)
    rel = next(iter(migrated.files))
    s3_bucket.client().delete_object(Bucket=s3_bucket.name, Key=f"media/{rel}")
    result = _cutover(migrated, s3_bucket, "--env-file", str(env_list), "--yes")
    assert result.exit_code == 3 and "not switching" in result.stderr and "lsmigrate copy" in result.stderr
    assert f"--env-file {env_list}" in result.stderr, "the hint names the same destination (endpoint included)"
    assert env_list.read_text() == ENV_LIST

    run("copy", str(migrated.root), f"{s3_bucket.url}/media", "--endpoint-url", s3_bucket.endpoint_url, "-q")
    (migrated.media / "upload" / "1" / "new-after-copy.jpg").write_bytes(b"new")
    result = _cutover(migrated, s3_bucket, "--env-file", str(env_list), "--yes")
    assert result.exit_code == 3 and "missing: upload/1/new-after-copy.jpg" in result.stderr
    assert env_list.read_text() == ENV_LIST


def test_refuses_when_an_object_differs(migrated, s3_bucket, tmp_path):
    env_list = tmp_path / "env.list"
    env_list.write_text(ENV_LIST)
    rel, size = next((rel, size) for rel, size in migrated.files.items() if size > 3)
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=f"media/{rel}", Body=b"x" * size)
    result = _cutover(migrated, s3_bucket, "--env-file", str(env_list), "--yes")
    assert result.exit_code == 3 and f"different: {rel}" in result.stderr
    assert env_list.read_text() == ENV_LIST


def test_dry_run_shows_a_diff_without_secrets_and_changes_nothing(migrated, s3_bucket, tmp_path, monkeypatch):
    env_list = tmp_path / "env.list"
    env_list.write_text(ENV_LIST)
    monkeypatch.setenv("STORAGE_AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("STORAGE_AWS_SECRET_ACCESS_KEY", "testing-secret-do-not-print")
    # moto accepts any secret; the cutover writes the given one into the file but never prints it
    result = _cutover(migrated, s3_bucket, "--env-file", str(env_list), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "+STORAGE_TYPE=s3" in result.stdout and "+STORAGE_AWS_SECRET_ACCESS_KEY=***" in result.stdout
    assert "testing-secret-do-not-print" not in result.output
    assert env_list.read_text() == ENV_LIST


def test_without_a_terminal_it_never_waits(migrated, s3_bucket, tmp_path):
    env_list = tmp_path / "env.list"
    env_list.write_text(ENV_LIST)
    result = _cutover(migrated, s3_bucket, "--env-file", str(env_list))
    assert result.exit_code == 2 and "pass --yes" in result.stderr
    assert env_list.read_text() == ENV_LIST


@pytest.mark.parametrize("name,text,option", [
    ("env.list", "STORAGE_TYPE=s3\nthis line is not a variable\n", "--env-file"),
    ("env.list", 'STORAGE_TYPE="unterminated\n', "--env-file"),
    ("docker-compose.yml", "services:\n  app:\n    environment: [\n", "--compose"),
    ("ls-values.yaml", "global:\n  persistence: [unclosed\n", "--values"),
])
def test_malformed_files_give_one_line_and_stay_untouched(migrated, s3_bucket, tmp_path, name, text, option):
    path = tmp_path / name
    path.write_text(text)
    result = _cutover(migrated, s3_bucket, option, str(path), "--yes", "--region", "us-east-1")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("lsmigrate: error:") and result.stderr.count("\n") == 1
    assert name in result.stderr
    assert path.read_text() == text and not list(tmp_path.glob(f"{name}.lsmigrate-backup-*"))


def test_unwritable_directory_leaves_the_file_untouched(migrated, s3_bucket, tmp_path, monkeypatch):
    env_list = tmp_path / "env.list"
    env_list.write_text(ENV_LIST)
    if os.geteuid() == 0:  # root writes anywhere: make the atomic replace fail as a read-only dir would
        import lsmigrate.deployment.backups as deployment

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(deployment.os, "replace", refuse)
    else:
        tmp_path.chmod(0o500)
    try:
        result = _cutover(migrated, s3_bucket, "--env-file", str(env_list), "--yes")
    finally:
        tmp_path.chmod(0o700)
    assert result.exit_code == 2 and "nothing was changed" in result.stderr
    assert env_list.read_text() == ENV_LIST


def test_rollback_without_backup_is_a_clear_error(tmp_path):
    env_list = tmp_path / "env.list"
    env_list.write_text(ENV_LIST)
    result = run("cutover", "--rollback", "--env-file", str(env_list))
    assert result.exit_code == 2 and "no lsmigrate backup" in result.stderr
