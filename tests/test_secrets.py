"""No secret ever appears in output, logs, reports, journals or state files (DESIGN.md, promise 5).

Known fake credentials (an S3 secret key with `/`, `+` and `=` in it, Azure account keys, connection strings
and a SAS, a GCS service-account JSON with a real private key block and the access token it is exchanged for)
go through the success paths and every error path reachable here: wrong key, missing bucket or container,
unreachable endpoint, malformed env.list / compose / values files holding the secret, cutover --dry-run of a
file whose secret is being written, doctor, plan --json, verify, sync --json-log, and -vv debug logging.
Everything lsmigrate printed or wrote is collected (stdout, stderr, JSON reports, --json-log files, the
SQLite journals and every other file under the state dir and the test's directory) and searched for each
secret as it is, URL-encoded, JSON-escaped and base64-encoded (at every byte alignment), and for base64 keys,
their decoded bytes.

The one exception (allowed by the issue): the user's own configuration file, and lsmigrate's backup of it,
hold what that file held; the backup must keep the file's permissions.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from lsdata import make_data_dir
from s3util import run

MiB = 1024 * 1024
S3_KEY_ID = "AKIAFAKE000EXAMPLE01"  # an access key id is no secret; only the secret key is searched for
S3_SECRET = "FAKEsecret/KEY+with=chars123"
S3_OLD_SECRET = "FAKEold/secret+KEY=value456"
AZURE_FAKE_KEY = base64.b64encode(b"FAKE azure account key, 64 bytes long, not a real one!" + bytes(range(10))).decode()
GCS_TOKEN = "ya29.FAKE-access-token-0123456789abcdefghijklmnopqrstuvwxyz"
BACKUP_MARK = ".lsmigrate-backup-"


def _closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ searching
def _base64_cores(raw: bytes) -> dict[str, str]:
    """The part of base64(raw) that appears whatever precedes `raw` in the encoded stream, for each of the
    three byte alignments (a secret inside `user:secret` or a longer blob encodes differently at each)."""
    cores = {}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start = 4 * ((shift + 2) // 3)
        end = len(encoded) - (4 if (shift + len(raw)) % 3 else 0)
        core = encoded[start:end]
        if len(core) >= 12:
            cores[f"base64 (alignment {shift})"] = core
            cores[f"urlsafe base64 (alignment {shift})"] = core.replace("+", "-").replace("/", "_")
    return cores


def secret_forms(value: str) -> dict[str, bytes]:
    """How a secret could show up: as it is, URL-encoded, JSON-escaped, base64'd, and (for a base64 key)
    its decoded bytes."""
    forms = {
        "plain": value,
        "URL-encoded": quote(value, safe=""),
        "URL-encoded path": quote(value),
        "form-encoded": quote_plus(value),
        "JSON-escaped": json.dumps(value)[1:-1],
        **_base64_cores(value.encode()),
    }
    out = {name: text.encode() for name, text in forms.items()}
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) >= 16:
        out["base64-decoded bytes"] = raw
    unique: dict[bytes, str] = {}
    for name, needle in out.items():
        unique.setdefault(needle, name)
    return {name: needle for needle, name in unique.items()}


class Sweep:
    """Runs lsmigrate, keeps everything it printed, and at the end searches that and every file under
    `roots` (but the user's own files) for every registered secret."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self.secrets: dict[str, dict[str, bytes]] = {}
        self.outputs: list[tuple[str, bytes]] = []
        self.allowed: set[Path] = set()
        self.runs = 0

    def secret(self, name: str, value: str) -> str:
        self.secrets[name] = secret_forms(value)
        return value

    def allow(self, path: Path) -> Path:
        """A user's own file: it may hold the secrets the user put there."""
        self.allowed.add(Path(path).resolve())
        return path

    def _record(self, label: str, stdout: str, stderr: str) -> None:
        self.runs += 1
        self.outputs.append((f"{label} [stdout]", stdout.encode()))
        self.outputs.append((f"{label} [stderr]", stderr.encode()))

    @staticmethod
    def _expect(label: str, code: int, output: str, expect: int | tuple[int, ...] | None, says: str | None) -> None:
        if expect is not None:
            wanted = expect if isinstance(expect, tuple) else (expect,)
            assert code in wanted, f"{label}: exit {code}, expected {wanted}\n{output[-3000:]}"
        if says is not None:
            assert says in output, f"{label}: {says!r} not in the output (so this path was not reached):\n{output[-3000:]}"

    def cli(self, *args: str, env: dict[str, str | None] | None = None, expect: int | tuple[int, ...] | None = None,
            says: str | None = None):
        """lsmigrate in-process."""
        result = run(*args, env=env)
        label = "lsmigrate " + " ".join(args)
        self._record(label, result.stdout, result.stderr)
        self._expect(label, result.exit_code, result.stdout + result.stderr, expect, says)
        return result

    def spawn(self, *args: str, env: dict[str, str] | None = None, expect=None, says=None, timeout: float = 120):
        """lsmigrate as its own process (for -vv: debug logging goes to the real stderr)."""
        return self.spawn_all([(args, env or {}, expect, says)], timeout=timeout)[0]

    def spawn_all(self, runs: list[tuple[tuple[str, ...], dict[str, str], object, str | None]], *, timeout: float = 120):
        """Several lsmigrate processes at once (slow error paths wait in parallel)."""
        procs = []
        for args, env, _, _ in runs:
            procs.append(subprocess.Popen([sys.executable, "-m", "lsmigrate.cli", *args], env={**os.environ, **env},
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = []
        try:
            for proc, (args, _, expect, says) in zip(procs, runs, strict=True):
                out, err = proc.communicate(timeout=timeout)
                label = "lsmigrate " + " ".join(args) + " (process)"
                self._record(label, out, err)
                self._expect(label, proc.returncode, out + err, expect, says)
                results.append((proc.returncode, out, err))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return results

    def files(self) -> Iterator[tuple[str, bytes]]:
        for root in self.roots:
            for path in sorted(Path(root).rglob("*")):
                if path.is_file() and not path.is_symlink() and path.resolve() not in self.allowed:
                    yield str(path), path.read_bytes()

    def assert_clean(self, *, journals: bool = True) -> None:
        files = list(self.files())
        if journals:
            assert any(where.endswith(".sqlite3") and "lsmigrate" in where for where, _ in files), \
                "no journal under the state dir: nothing to search there"
        leaks = []
        scanned = 0
        for where, blob in [*self.outputs, *files]:
            scanned += 1
            for name, forms in self.secrets.items():
                for form, needle in forms.items():
                    if needle in blob:
                        at = blob.index(needle)
                        context = blob[max(0, at - 80):at + len(needle) + 40].decode("utf-8", "replace")
                        leaks.append(f"{name} ({form}) in {where}: ...{context}...")
        assert self.secrets and scanned > self.runs, "nothing was searched"
        assert not leaks, f"{len(leaks)} secret leak(s):\n" + "\n".join(leaks[:40])


@pytest.fixture
def sweep(tmp_path, s3_env, monkeypatch) -> Sweep:
    """Credentials of the test's own choosing only: no provider variable leaks in from the environment."""
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_NAME",
                 "AZURE_STORAGE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith(("STORAGE_", "LABEL_STUDIO_", "HEARTEX_")):
            monkeypatch.delenv(name)
    return Sweep([tmp_path, s3_env])


def _user_file(sweep: Sweep, path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    path.chmod(mode)
    return sweep.allow(path)


# -------------------------------------------------------------------------------------------------- S3
def test_s3_secret_key_stays_out_of_everything(sweep, s3_bucket, rclone_s3, tmp_path, monkeypatch):
    sweep.secret("S3 secret key", S3_SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)  # moto takes any; rclone (testing/testing) refuses it
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=4, large_files=(7 * MiB,))
    src, url, ep = str(data.root), f"{s3_bucket.url}/m", ("--endpoint-url", s3_bucket.endpoint_url)
    sizes = ("--chunk-size", "5MiB", "--multipart-threshold", "6MiB")

    # Success.
    sweep.cli("copy", src, url, *ep, *sizes, "--json", expect=0)
    sweep.cli("copy", src, url, *ep, "-v", expect=0)
    sweep.cli("verify", src, url, *ep, "--json", expect=0)
    sweep.cli("verify", src, url, *ep, "--download", expect=0)
    sweep.cli("plan", "--data-dir", src, "--to", url, *ep, "--json", expect=0)
    sweep.cli("plan", src, f"{s3_bucket.url}/p", *ep, "--probe", expect=0)
    log = tmp_path / "sync.jsonl"
    sweep.cli("sync", src, f"{s3_bucket.url}/s", *ep, *sizes, "--json-log", str(log), "--json", expect=0)
    sweep.cli("sync", src, f"{s3_bucket.url}/s", *ep, "--json-log", str(log), "--delete", expect=0)
    assert log.stat().st_size > 0
    sweep.cli("doctor", "--to", url, *ep, expect=(0, 2), says="credentials: accepted")
    sweep.cli("doctor", "--to", url, *ep, "--json", expect=(0, 2))
    sweep.spawn("copy", src, f"{s3_bucket.url}/vv", *ep, *sizes, "-vv", expect=0)

    # The secret in Label Studio's own variables, in an env.list.
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    env_list = _user_file(sweep, tmp_path / "deploy" / "env.list",
                          f"STORAGE_TYPE=s3\nSTORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=m\n"
                          f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\nSTORAGE_AWS_ACCESS_KEY_ID={S3_KEY_ID}\n"
                          f"STORAGE_AWS_SECRET_ACCESS_KEY={S3_SECRET}\n")
    sweep.cli("local-to-s3", "--data-dir", src, "--env-file", str(env_list), "--json", "--yes", expect=0)
    sweep.cli("plan", "--data-dir", src, "--env-file", str(env_list), "--json", expect=0)
    sweep.cli("doctor", "--env-file", str(env_list), expect=(0, 2), says="credentials: accepted")
    sweep.cli("cutover", "--data-dir", src, "--env-file", str(env_list), "--dry-run", expect=0)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)

    # Wrong key: rclone serve s3 checks signatures.
    (rclone_s3.root_dir / "bkt").mkdir(exist_ok=True)
    rc = ("s3://bkt/x", "--endpoint-url", rclone_s3.endpoint_url)
    rejected = "credentials were rejected"
    sweep.cli("copy", src, *rc, expect=2, says=rejected)
    sweep.cli("copy", src, *rc, "--json", expect=2, says=rejected)
    sweep.cli("verify", src, *rc, "--json", expect=2, says=rejected)
    sweep.cli("plan", src, *rc, "--json", expect=2, says=rejected)
    sweep.cli("sync", src, *rc, "--json-log", str(tmp_path / "rejected.jsonl"), expect=2, says=rejected)
    sweep.cli("doctor", "--to", "s3://bkt/x", "--endpoint-url", rclone_s3.endpoint_url, "--json", expect=2, says="rejected")
    sweep.spawn("copy", src, *rc, "-vv", expect=2, says=rejected)

    # Missing bucket.
    gone = ("s3://no-such-bucket-secrets/x", *ep)
    for args in (("copy", src, *gone), ("verify", src, *gone), ("sync", src, *gone, "--json-log", str(log)),
                 ("plan", src, *gone, "--json")):
        sweep.cli(*args, expect=2, says="does not exist")
    sweep.cli("doctor", "--to", gone[0], *ep, expect=2, says="does not exist")

    # Unreachable endpoint.
    closed = ("s3://bkt/x", "--endpoint-url", f"http://127.0.0.1:{_closed_port()}", "--retries", "0")
    for args in (("copy", src, *closed), ("copy", src, *closed, "--json"), ("verify", src, *closed),
                 ("plan", src, *closed, "--json"), ("sync", src, *closed, "--json-log", str(tmp_path / "down.jsonl"))):
        sweep.cli(*args, expect=2, says="cannot reach")
    sweep.cli("doctor", "--to", "s3://bkt/x", *closed[1:], expect=2, says="cannot reach")

    # Object parameters holding a key (SSE-C), malformed and misnamed.
    bad_json = {"STORAGE_AWS_OBJECT_PARAMETERS": '{"SSECustomerKey": "' + S3_SECRET + '", '}
    sweep.cli("copy", src, url, *ep, env=bad_json, expect=2, says="not valid JSON")
    misnamed = {"STORAGE_AWS_OBJECT_PARAMETERS": json.dumps({"NotAParameter": S3_SECRET})}
    sweep.cli("copy", src, url, *ep, env=misnamed, expect=2, says="NotAParameter")
    sweep.assert_clean()


# ---------------------------------------------------------------------------------------------- cutover
def _bad_env_lists(secret: str) -> dict[str, bytes]:
    head = "# Label Studio\nSTORAGE_TYPE=s3\nSTORAGE_AWS_BUCKET_NAME=bkt\n"
    return {
        "unterminated double quote": f'{head}STORAGE_AWS_SECRET_ACCESS_KEY="{secret}\n'.encode(),
        "unterminated single quote": f"{head}STORAGE_AWS_SECRET_ACCESS_KEY='{secret}\n".encode(),
        "text after the quote": f"{head}STORAGE_AWS_SECRET_ACCESS_KEY='{secret}' {secret}\n".encode(),
        "the value alone on a line": f"{head}{secret}\n".encode(),
        "bad variable name": f"{head}STORAGE AWS SECRET ACCESS KEY={secret}\n".encode(),
        "not UTF-8": f"{head}STORAGE_AWS_SECRET_ACCESS_KEY={secret}".encode() + b"\xff\xfe\n",
    }


def test_config_files_holding_secrets_never_echo_them(sweep, s3_bucket, tmp_path, monkeypatch):
    """Malformed env.list / compose / values files, cutover --dry-run of files whose secret is being written,
    the switch itself (backup with the file's permissions) and the rollback."""
    sweep.secret("S3 secret key", S3_SECRET)
    sweep.secret("previous S3 secret key", S3_OLD_SECRET)
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)
    src, url, ep = str(data.root), f"{s3_bucket.url}/m", ("--endpoint-url", s3_bucket.endpoint_url)
    sweep.cli("copy", src, url, *ep, expect=0)

    # Malformed env.list files holding the secret: one line, exit 2, and not the line itself.
    for number, (what, content) in enumerate(_bad_env_lists(S3_SECRET).items()):
        bad = _user_file(sweep, tmp_path / "bad" / f"env-{number}.list", content)
        for args in (("local-to-s3", "--data-dir", src, "--env-file", str(bad)),
                     ("plan", "--data-dir", src, "--env-file", str(bad), "--json"),
                     ("copy", src, url, *ep, "--env-file", str(bad)),
                     ("cutover", "--data-dir", src, "--env-file", str(bad), "--to", url, *ep, "--dry-run"),
                     ("doctor", "--env-file", str(bad))):
            result = sweep.cli(*args, expect=2, says=f"{bad} line 4")
            assert result.stderr.count("\n") == 1, (what, result.stderr)

    # Malformed compose and values files holding the secret.
    compose_bad = _user_file(sweep, tmp_path / "bad" / "compose.yml",
                             "services:\n  app:\n    environment:\n"
                             f"      STORAGE_AWS_SECRET_ACCESS_KEY: {S3_SECRET}\n     oops: [{S3_SECRET}\n")
    values_bad = _user_file(sweep, tmp_path / "bad" / "values.yaml",
                            "global:\n  persistence:\n    type: s3\n    config:\n      s3:\n"
                            f"        secretKey: {S3_SECRET}\n        bucket: [{S3_SECRET}\n")
    for args in (("plan", "--data-dir", src, "--compose", str(compose_bad)),
                 ("cutover", "--data-dir", src, "--compose", str(compose_bad), "--to", url, *ep, "--dry-run"),
                 ("plan", "--data-dir", src, "--values", str(values_bad)),
                 ("cutover", "--data-dir", src, "--values", str(values_bad), "--to", url, *ep, "--region",
                  "us-east-1", "--dry-run")):
        sweep.cli(*args, expect=2, says="invalid YAML")

    # cutover writes the secret from Label Studio's own variables into an env.list: the diff masks it.
    monkeypatch.setenv("STORAGE_AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("STORAGE_AWS_SECRET_ACCESS_KEY", S3_SECRET)
    fresh = _user_file(sweep, tmp_path / "fresh" / "env.list", "# Label Studio\nLABEL_STUDIO_HOST=http://ls:8080\n")
    cut = ("cutover", "--data-dir", src, "--env-file", str(fresh), "--to", url, *ep)
    result = sweep.cli(*cut, "--dry-run", expect=0, says="+STORAGE_AWS_SECRET_ACCESS_KEY=***")
    doc = json.loads(sweep.cli(*cut, "--dry-run", "--json", expect=0).stdout)
    assert "+STORAGE_AWS_SECRET_ACCESS_KEY=***" in doc["diff"]

    # A file that has its own secret (the file wins over the environment): shown as masked context, then
    # switched for real.
    quoted = _user_file(sweep, tmp_path / "quoted" / "env.list",
                        f"STORAGE_AWS_SECRET_ACCESS_KEY='{S3_OLD_SECRET}'\n", mode=0o600)
    # docker run --env-file would keep those quotes in the key, compose not: refused, the value never shown
    sweep.cli("cutover", "--data-dir", src, "--env-file", str(quoted), "--to", url, *ep, "--dry-run", expect=2,
              says="(STORAGE_AWS_SECRET_ACCESS_KEY): docker run --env-file keeps the quotes")
    original = (f"# Label Studio\nSTORAGE_AWS_ACCESS_KEY_ID={S3_KEY_ID}\n"
                f"STORAGE_AWS_SECRET_ACCESS_KEY={S3_OLD_SECRET}\nLABEL_STUDIO_HOST=http://ls:8080\n")
    env_list = _user_file(sweep, tmp_path / "deploy" / "env.list", original, mode=0o600)
    cut = ("cutover", "--data-dir", src, "--env-file", str(env_list), "--to", url, *ep)
    sweep.cli(*cut, "--dry-run", expect=0, says="\n STORAGE_AWS_SECRET_ACCESS_KEY=***\n")
    doc = json.loads(sweep.cli(*cut, "--yes", "--json", expect=0).stdout)
    assert doc["switched"]
    backup = Path(doc["backup"])
    assert backup.name.startswith(f"env.list{BACKUP_MARK}") and backup.parent == env_list.parent
    assert backup.read_bytes() == original.encode(), "the backup holds exactly what the file held"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600, "the backup keeps the file's permissions"
    assert stat.S_IMODE(env_list.stat().st_mode) == 0o600, "the switched file keeps its permissions"
    switched = env_list.read_text()
    assert f"STORAGE_AWS_SECRET_ACCESS_KEY={S3_OLD_SECRET}\n" in switched and "STORAGE_TYPE=s3" in switched
    sweep.allow(backup)
    sweep.cli("cutover", "--rollback", "--env-file", str(env_list), expect=0)
    assert env_list.read_text() == original and stat.S_IMODE(env_list.stat().st_mode) == 0o600
    assert sorted(p.name for p in env_list.parent.iterdir()) == ["env.list", backup.name], "no stray copies"

    # Compose and Helm values holding secrets on one line: masked in the dry-run diff.
    monkeypatch.delenv("STORAGE_AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("STORAGE_AWS_ACCESS_KEY_ID")
    compose = _user_file(sweep, tmp_path / "compose" / "docker-compose.yml",
                         "services:\n  labelstudio:\n    image: heartexlabs/label-studio:latest\n    environment:\n"
                         f"      - STORAGE_AWS_ACCESS_KEY_ID={S3_KEY_ID}\n"
                         f"      - STORAGE_AWS_SECRET_ACCESS_KEY={S3_SECRET}\n"
                         "      - LABEL_STUDIO_HOST=http://ls:8080\n")
    sweep.cli("cutover", "--data-dir", src, "--compose", str(compose), "--to", url, *ep, "--dry-run", expect=0,
              says="STORAGE_AWS_SECRET_ACCESS_KEY=***")
    values = _user_file(sweep, tmp_path / "helm" / "values.yaml",
                        "global:\n  persistence:\n    enabled: false\n    type: volume\n    config:\n      s3:\n"
                        f"        accessKey: {S3_KEY_ID}\n        secretKey: \"{S3_SECRET}\"\n        bucket: \"\"\n")
    sweep.cli("cutover", "--data-dir", src, "--values", str(values), "--to", url, *ep, "--region", "us-east-1",
              "--dry-run", "--json", expect=0, says="secretKey: ***")
    sweep.assert_clean()


def test_cutover_diff_masks_a_secret_on_the_line_after_its_key(sweep, s3_bucket, tmp_path):
    sweep.secret("S3 secret key", S3_SECRET)
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False)
    src, url, ep = str(data.root), f"{s3_bucket.url}/m", ("--endpoint-url", s3_bucket.endpoint_url)
    sweep.cli("copy", src, url, *ep, expect=0)
    compose = _user_file(sweep, tmp_path / "compose" / "docker-compose.yml",
                         "services:\n  labelstudio:\n    image: heartexlabs/label-studio:latest\n    environment:\n"
                         f"      STORAGE_AWS_ACCESS_KEY_ID: {S3_KEY_ID}\n"
                         f"      STORAGE_AWS_SECRET_ACCESS_KEY: >-\n        {S3_SECRET}\n"
                         "      LABEL_STUDIO_HOST: http://ls:8080\n")
    sweep.cli("cutover", "--data-dir", src, "--compose", str(compose), "--to", url, *ep, "--dry-run", expect=0,
              says="+      STORAGE_TYPE: s3")
    sweep.cli("cutover", "--data-dir", src, "--compose", str(compose), "--to", url, *ep, "--dry-run", "--json",
              expect=0)
    sweep.assert_clean()


# Credential-like lines lsmigrate never reads (a trial user saw them in full as context of the diff), next
# to the lines the switch changes: the name says they are secret, so the value is masked, wherever it stands.
CONTEXT_SECRETS = {
    "admin password": "AdminPw222-context",
    "user token": "TokTok333-context",
    "Django secret key": "DjangoSecret444-context",
    "access key id": "AKIAFAKE000CONTEXT02",
    "Postgres password": "PostgrePw555-context",
    "password in a database URL": "DbUrlPw666-context",
    "password in a Redis URL": "RedisPw777-context",
    "API key": "sk-FAKEapiKEY888-context",
    "credentials": "FAKEcredentials999-context",
    "passwd": "Passwd000-context",
    "Helm pgConfig password": "PgSecretPw111-context",
    "Helm secretKey": "HelmSecretKey222-context",
    "Helm token": "HelmToken333-context",
}


def test_cutover_diff_masks_every_credential_like_line_shown_as_context(sweep, s3_bucket, tmp_path):
    secret = {name: sweep.secret(name, value) for name, value in CONTEXT_SECRETS.items()}
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False)
    src, url, ep = str(data.root), f"{s3_bucket.url}/m", ("--endpoint-url", s3_bucket.endpoint_url)
    sweep.cli("copy", src, url, *ep, expect=0)

    # env.list: --no-nginx rewrites the two USE_NGINX_* lines in place and the storage lines go at the end,
    # so every other line is context of some hunk.
    env_list = _user_file(sweep, tmp_path / "deploy" / "env.list",
                          "# Label Studio\nLABEL_STUDIO_HOST=http://ls:8080\n"
                          f"LABEL_STUDIO_PASSWORD={secret['admin password']}\n"
                          f"LABEL_STUDIO_USER_TOKEN={secret['user token']}\n"
                          f"SECRET_KEY={secret['Django secret key']}\n"
                          "USE_NGINX_FOR_UPLOADS=true\n"
                          f"STORAGE_AWS_ACCESS_KEY_ID={secret['access key id']}\n"
                          f"STORAGE_AWS_SECRET_ACCESS_KEY={sweep.secret('S3 secret key', S3_OLD_SECRET)}\n"
                          f"POSTGRE_PASSWORD='{secret['Postgres password']}'\n"
                          f"DATABASE_URL=postgres://labelstudio:{secret['password in a database URL']}@db:5432/ls\n"
                          "USE_NGINX_FOR_EXPORT_DOWNLOADS=true\n"
                          f"REDIS_URL=redis://:{secret['password in a Redis URL']}@redis:6379/0\n"
                          f"ML_OPENAI_API_KEY={secret['API key']}\n"
                          f"ML_BACKEND_CREDENTIALS={secret['credentials']}\n"
                          f"DB_PASSWD={secret['passwd']}\n")
    cut = ("cutover", "--data-dir", src, "--env-file", str(env_list), "--to", url, *ep, "--dry-run", "--no-nginx")
    text = sweep.cli(*cut, expect=0, says="+USE_NGINX_FOR_UPLOADS=false").stdout
    diff = json.loads(sweep.cli(*cut, "--json", expect=0).stdout)["diff"]
    for shown in (text, diff):
        for line in (" LABEL_STUDIO_PASSWORD=***", " LABEL_STUDIO_USER_TOKEN=***", " SECRET_KEY=***",
                     " STORAGE_AWS_ACCESS_KEY_ID=***", " STORAGE_AWS_SECRET_ACCESS_KEY=***", " POSTGRE_PASSWORD='***'",
                     " DATABASE_URL=postgres://labelstudio:***@db:5432/ls", " REDIS_URL=redis://:***@redis:6379/0",
                     " ML_OPENAI_API_KEY=***", " ML_BACKEND_CREDENTIALS=***", " DB_PASSWD=***",
                     "+STORAGE_TYPE=s3", "-USE_NGINX_FOR_UPLOADS=true", "+USE_NGINX_FOR_UPLOADS=false",
                     f"+STORAGE_AWS_BUCKET_NAME={s3_bucket.name}"):
            assert f"\n{line}\n" in shown, (line, shown)

    # Compose environment list entries, quoted or not.
    compose = _user_file(sweep, tmp_path / "compose" / "docker-compose.yml",
                         "services:\n  labelstudio:\n    image: heartexlabs/label-studio:latest\n    environment:\n"
                         f"      - SECRET_KEY={secret['Django secret key']}\n"
                         f"      - \"LABEL_STUDIO_PASSWORD={secret['admin password']}\"\n"
                         f"      - DJANGO_DB_URL=postgresql://ls:{secret['password in a database URL']}@db/ls\n")
    cut = ("cutover", "--data-dir", src, "--compose", str(compose), "--to", url, *ep, "--dry-run")
    text = sweep.cli(*cut, expect=0, says="+      - STORAGE_TYPE=s3").stdout
    diff = json.loads(sweep.cli(*cut, "--json", expect=0).stdout)["diff"]
    for shown in (text, diff):
        for line in ("       - SECRET_KEY=***", '       - "LABEL_STUDIO_PASSWORD=***"',
                     "       - DJANGO_DB_URL=postgresql://ls:***@db/ls"):
            assert f"\n{line}\n" in shown, (line, shown)

    # Helm values: global.pgConfig.password next to the persistence keys the switch changes; secret-like keys
    # at any depth; the names of Kubernetes Secrets (not secret themselves) and harmless keys stay readable.
    values = _user_file(sweep, tmp_path / "helm" / "values.yaml",
                        "global:\n  pgConfig:\n    host: db.example.org\n    userName: labelstudio\n"
                        f"    password: {secret['Helm pgConfig password']}\n"
                        "  persistence:\n    enabled: false\n    type: volume\n    config:\n      s3:\n"
                        "        accessKeyExistingSecret: ls-s3-credentials\n"
                        f"        secretKey: \"{secret['Helm secretKey']}\"\n"
                        "        bucket: \"\"\n"
                        f"  extraEnvironmentVars:\n    LABEL_STUDIO_USER_TOKEN: {secret['user token']}\n"
                        f"    ML_API_TOKEN: '{secret['Helm token']}'\n")
    cut = ("cutover", "--data-dir", src, "--values", str(values), "--to", url, *ep, "--region", "us-east-1",
           "--dry-run")
    keys = {"STORAGE_AWS_ACCESS_KEY_ID": "testing", "STORAGE_AWS_SECRET_ACCESS_KEY": "testing"}  # the Secret's
    text = sweep.cli(*cut, env=keys, expect=0, says="+        bucket:").stdout
    diff = json.loads(sweep.cli(*cut, "--json", env=keys, expect=0).stdout)["diff"]
    for shown in (text, diff):
        for line in ("     password: ***", "         secretKey: ***", "     LABEL_STUDIO_USER_TOKEN: ***",
                     "     ML_API_TOKEN: '***'", "         accessKeyExistingSecret: ls-s3-credentials",
                     "     userName: labelstudio"):
            assert f"\n{line}\n" in shown, (line, shown)
    sweep.assert_clean()


def test_credential_like_names_are_told_from_harmless_ones():
    from lsmigrate.redact import is_secret_name, scrub

    for name in ("LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN", "SECRET_KEY", "STORAGE_AWS_ACCESS_KEY_ID",
                 "POSTGRE_PASSWORD", "OPENAI_API_KEY", "SSH_PRIVATE_KEY", "ML_CREDENTIALS", "passwd", "DB_PWD",
                 "global.pgConfig.password", "secretKey", "token", "apiKey", "x-api-key", "LICENSE_KEY"):
        assert is_secret_name(name), name
    for name in ("STORAGE_AWS_BUCKET_NAME", "USE_NGINX_FOR_UPLOADS", "SSECustomerKeyMD5", "SSECustomerAlgorithm",
                 "GOOGLE_APPLICATION_CREDENTIALS", "AWS_SHARED_CREDENTIALS_FILE", "accessKeyExistingSecret",
                 "secretName", "TOKENIZERS_PARALLELISM", "PWD", "key", "PUBLIC_KEY", "token_uri", "REDIS_URL",
                 "DJANGO_DB", "STORAGE_AWS_SSE_KMS_KEY_ID", "SSEKMSKeyId"):
        assert not is_secret_name(name), name
    assert scrub("DJANGO_DB=postgres://ls:pw@with@at@db:5432/ls https://host:8080/p@th") == \
        f"DJANGO_DB=postgres://ls:{MASK}@db:5432/ls https://host:8080/p@th"
    assert scrub('-# SECRET_KEY=abc\n+      password: ""\n       password: |\n') == \
        f'-# SECRET_KEY={MASK}\n+      password: ""\n       password: |\n', "an empty or block value hides nothing"


# ------------------------------------------------------------------------------------------------- GCS
class TokenServer:
    """A stand-in for oauth2.googleapis.com/token on 127.0.0.1: hands out GCS_TOKEN, or refuses the grant."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.hits += 1
                if refuse:
                    status, body = 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
                else:
                    status, body = 200, {"access_token": GCS_TOKEN, "token_type": "Bearer", "expires_in": 3600}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@pytest.fixture(scope="module")
def private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    yield server
    server.close()


def _service_account(sweep: Sweep, path: Path, pem: str, token_uri: str) -> Path:
    for number, line in enumerate(pem.strip().splitlines()[1:-1]):
        if len(line) >= 32:
            sweep.secret(f"private key line {number + 1}", line)
    doc = {"type": "service_account", "project_id": "fake-project",
           "private_key_id": "0123456789abcdef0123456789abcdef01234567", "private_key": pem,
           "client_email": "lsmigrate@fake-project.iam.gserviceaccount.com", "client_id": "123456789012345678901",
           "token_uri": token_uri}
    return _user_file(sweep, path, json.dumps(doc, indent=2))


def test_gcs_service_account_key_and_token_stay_out_of_everything(sweep, fake_gcs, token_server, private_key_pem,
                                                                    tmp_path, monkeypatch):
    import gcsfs

    sweep.secret("GCS access token", GCS_TOKEN)
    account = _service_account(sweep, tmp_path / "creds" / "sa.json", private_key_pem, token_server.url)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account))
    bucket = f"s{uuid.uuid4().hex[:12]}"
    gcsfs.GCSFileSystem(endpoint_url=fake_gcs.endpoint_url, token="anon", project="t", skip_instance_cache=True).mkdir(bucket)
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=4, large_files=(10 * MiB,))
    src, url, ep = str(data.root), f"gs://{bucket}/m", ("--endpoint-url", fake_gcs.endpoint_url)
    sizes = ("--chunk-size", "8MiB", "--multipart-threshold", "9MiB")

    sweep.cli("copy", src, url, *ep, *sizes, "--json", expect=0)
    assert token_server.hits >= 1, "the service account was used (its token fetched)"
    sweep.cli("copy", src, url, *ep, expect=0)
    sweep.cli("verify", src, url, *ep, "--json", expect=0)
    sweep.cli("verify", src, url, *ep, "--download", expect=0)
    sweep.cli("plan", "--data-dir", src, "--to", url, *ep, "--json", expect=0)
    log = tmp_path / "sync.jsonl"
    sweep.cli("sync", src, f"gs://{bucket}/s", *ep, *sizes, "--json-log", str(log), "--json", expect=0)
    sweep.cli("doctor", "--to", url, *ep, expect=(0, 2), says="credentials: accepted")
    sweep.cli("doctor", "--to", url, *ep, "--json", expect=(0, 2))
    sweep.spawn("copy", src, f"gs://{bucket}/vv", *ep, *sizes, "-vv", expect=0)
    settings = _user_file(sweep, tmp_path / "deploy" / "env.list",
                          f"STORAGE_TYPE=gcs\nSTORAGE_GCS_BUCKET_NAME={bucket}\nSTORAGE_GCS_FOLDER=m\n"
                          f"STORAGE_GCS_PROJECT_ID=fake-project\nSTORAGE_GCS_ENDPOINT={fake_gcs.endpoint_url}\n"
                          f"GOOGLE_APPLICATION_CREDENTIALS={account}\n")
    sweep.cli("local-to-gcs", "--data-dir", src, "--env-file", str(settings), "--json", "--yes", expect=0)

    # Missing bucket.
    gone = ("gs://no-such-bucket-secrets/x", *ep)
    for args in (("copy", src, *gone), ("verify", src, *gone, "--json"), ("plan", src, *gone),
                 ("sync", src, *gone, "--json-log", str(log))):
        sweep.cli(*args, expect=2, says="does not exist")
    sweep.cli("doctor", "--to", gone[0], *ep, "--json", expect=2, says="does not exist")

    # A key block that cannot be parsed: the parser's complaint must not quote it.
    broken_pem = private_key_pem.replace("-----END PRIVATE KEY-----", "")
    broken = _service_account(sweep, tmp_path / "creds" / "broken.json", broken_pem, token_server.url)
    for args in (("copy", src, url, *ep), ("doctor", "--to", url, *ep), ("plan", src, url, *ep, "--json")):
        sweep.cli(*args, env={"GOOGLE_APPLICATION_CREDENTIALS": str(broken)}, expect=2, says="cannot be used")
    sweep.assert_clean()


# ----------------------------------------------------------------------------------------------- Azure
def test_azure_keys_connection_strings_and_sas_stay_out_of_everything(sweep, azurite, tmp_path, monkeypatch):
    from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

    # Azurite's account key is public, but here it is the account key in use: it must not leak either.
    sweep.secret("account key in use", azurite.account_key)
    sweep.secret("connection string in use", azurite.connection_string)
    sweep.secret("wrong account key", AZURE_FAKE_KEY)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"s{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=4, large_files=(6 * MiB,))
    src, url = str(data.root), f"az://{container}/m"
    sizes = ("--chunk-size", "4MiB", "--multipart-threshold", "5MiB")
    log = tmp_path / "sync.jsonl"

    # Success through the connection string.
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    sweep.cli("copy", src, url, *sizes, "--json", expect=0)
    sweep.cli("verify", src, url, "--json", expect=0)
    sweep.cli("verify", src, url, "--download", expect=0)
    sweep.cli("plan", "--data-dir", src, "--to", url, "--json", expect=0)
    sweep.cli("sync", src, f"az://{container}/s", *sizes, "--json-log", str(log), "--json", expect=0)
    sweep.cli("doctor", "--to", url, expect=(0, 2), says="credentials: accepted")
    sweep.cli("doctor", "--to", url, "--json", expect=(0, 2))
    sweep.spawn("copy", src, f"az://{container}/vv", *sizes, "-vv", expect=0)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")

    # Success through name and key, from an env.list, and through a SAS.
    ep = ("--endpoint-url", azurite.blob_endpoint)
    settings = _user_file(sweep, tmp_path / "deploy" / "env.list",
                          f"STORAGE_TYPE=azure\nSTORAGE_AZURE_CONTAINER_NAME={container}\nSTORAGE_AZURE_FOLDER=m\n"
                          f"STORAGE_AZURE_ACCOUNT_NAME={azurite.account_name}\n"
                          f"STORAGE_AZURE_ACCOUNT_KEY={azurite.account_key}\n")
    sweep.cli("local-to-azure", "--data-dir", src, "--env-file", str(settings), *ep, "--json", "--yes", expect=0)
    sweep.cli("doctor", "--env-file", str(settings), *ep, expect=(0, 2), says="credentials: accepted")
    expiry = datetime.now(timezone.utc) + timedelta(hours=1)
    full = generate_container_sas(azurite.account_name, container, account_key=azurite.account_key, expiry=expiry,
                                  permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True,
                                                                     add=True, create=True))
    read_only = generate_container_sas(azurite.account_name, container, account_key=azurite.account_key,
                                       expiry=expiry, permission=ContainerSasPermissions(read=True, list=True))
    for name, sas in (("SAS", full), ("read-only SAS", read_only)):
        sweep.secret(f"{name} signature", dict(p.split("=", 1) for p in sas.split("&"))["sig"])
    sas_env = {"AZURE_STORAGE_CONNECTION_STRING": f"BlobEndpoint={azurite.blob_endpoint};SharedAccessSignature={full}"}
    sweep.cli("copy", src, f"az://{container}/sas", *sizes, env=sas_env, expect=0)
    ro_env = {"AZURE_STORAGE_CONNECTION_STRING":
              f"BlobEndpoint={azurite.blob_endpoint};SharedAccessSignature={read_only}"}
    sweep.cli("copy", src, f"az://{container}/ro", env=ro_env, expect=2, says="access denied")
    sweep.cli("doctor", "--to", f"az://{container}/ro", env=ro_env, expect=2)

    # Wrong key, as name + key and inside a connection string.
    wrong = {"STORAGE_AZURE_ACCOUNT_NAME": azurite.account_name, "STORAGE_AZURE_ACCOUNT_KEY": AZURE_FAKE_KEY}
    rejected = "credentials were rejected"
    for args in (("copy", src, url, *ep), ("copy", src, url, *ep, "--json"), ("verify", src, url, *ep),
                 ("plan", src, url, *ep, "--json"), ("sync", src, url, *ep, "--json-log", str(log))):
        sweep.cli(*args, env=wrong, expect=2, says=rejected)
    sweep.cli("doctor", "--to", url, *ep, "--json", env=wrong, expect=2, says="rejected")
    sweep.spawn("copy", src, url, *ep, "-vv", env=wrong, expect=2, says=rejected)
    wrong_string = azurite.connection_string.replace(azurite.account_key, AZURE_FAKE_KEY)
    sweep.secret("connection string with the wrong key", wrong_string)
    sweep.cli("copy", src, url, env={"AZURE_STORAGE_CONNECTION_STRING": wrong_string}, expect=2, says=rejected)
    not_base64 = "FAKE!!not*base64^" + AZURE_FAKE_KEY[16:-2]  # cannot be decoded
    sweep.secret("account key that is not base64", not_base64)
    sweep.cli("copy", src, url, *ep, env={**wrong, "STORAGE_AZURE_ACCOUNT_KEY": not_base64}, expect=2,
              says="credentials were rejected")
    unusable = azurite.connection_string.replace(azurite.account_key, not_base64)
    sweep.secret("connection string with a key that is not base64", unusable)
    sweep.cli("copy", src, url, env={"AZURE_STORAGE_CONNECTION_STRING": unusable}, expect=2, says="cannot sign")

    # Missing container.
    gone = ("az://no-such-container-secrets/x", *ep)
    for args in (("copy", src, *gone), ("verify", src, *gone), ("sync", src, *gone, "--json-log", str(log))):
        sweep.cli(*args, env={**wrong, "STORAGE_AZURE_ACCOUNT_KEY": azurite.account_key}, expect=2,
                  says="does not exist")

    # Malformed connection strings holding a key.
    for number, text in enumerate((
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURE_FAKE_KEY};BlobEndpoint",
        f"AccountName=devstoreaccount1;AccountKey={AZURE_FAKE_KEY};BlobEndpoint=http://[bad/x;",
        f"garbage {AZURE_FAKE_KEY}",
    )):
        sweep.secret(f"malformed connection string {number}", text)
        result = sweep.cli("copy", src, url, env={"AZURE_STORAGE_CONNECTION_STRING": text})
        assert result.exit_code != 0 and result.stderr.count("\n") == 1, result.output
    bad = _user_file(sweep, tmp_path / "bad" / "env.list",
                     f'STORAGE_TYPE=azure\nSTORAGE_AZURE_CONTAINER_NAME=cont\nSTORAGE_AZURE_ACCOUNT_KEY="{AZURE_FAKE_KEY}\n')
    sweep.cli("local-to-azure", "--data-dir", src, "--env-file", str(bad), expect=2, says="line 3")
    sweep.assert_clean()


# ----------------------------------------------------------------------------------- slow error paths
@pytest.mark.slow
def test_unreachable_endpoints_and_refused_tokens_stay_silent_about_secrets(sweep, fake_gcs, private_key_pem,
                                                                         tmp_path):
    """The error paths that take a provider SDK's own retries to reach (about 18 s for Azure, 33 s for GCS:
    --retries is not passed down), all at once."""
    refusing = TokenServer(refuse=True)
    granting = TokenServer()
    try:
        sweep.secret("GCS access token", GCS_TOKEN)
        sweep.secret("wrong account key", AZURE_FAKE_KEY)
        data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False)
        src = str(data.root)
        refused = _service_account(sweep, tmp_path / "creds" / "refused.json", private_key_pem, refusing.url)
        granted = _service_account(sweep, tmp_path / "creds" / "granted.json", private_key_pem, granting.url)
        closed = f"http://127.0.0.1:{_closed_port()}"
        azure = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURE_FAKE_KEY};" \
                f"BlobEndpoint={closed}/devstoreaccount1;"
        sweep.secret("connection string to a closed port", azure)
        gcs_ep = ("--endpoint-url", fake_gcs.endpoint_url)
        sweep.spawn_all([
            (("copy", src, "gs://any-bucket/x", *gcs_ep, "--retries", "1"),
             {"GOOGLE_APPLICATION_CREDENTIALS": str(refused)}, 2, "credentials were rejected"),
            (("doctor", "--to", "gs://any-bucket/x", *gcs_ep, "--json"),
             {"GOOGLE_APPLICATION_CREDENTIALS": str(refused)}, 2, "rejected"),
            (("copy", src, "gs://any-bucket/x", "--endpoint-url", closed, "--retries", "1"),
             {"GOOGLE_APPLICATION_CREDENTIALS": str(granted)}, 2, "cannot reach"),
            (("copy", src, "az://cont/x", "--retries", "1"), {"AZURE_STORAGE_CONNECTION_STRING": azure}, 2, "cannot reach"),
            (("doctor", "--to", "az://cont/x", "--json"), {"AZURE_STORAGE_CONNECTION_STRING": azure}, 2, "cannot reach"),
        ], timeout=150)
        assert refusing.hits >= 1
    finally:
        refusing.close()
        granting.close()
    sweep.assert_clean(journals=False)  # every run stopped before a journal was opened


# ---------------------------------------------------------------------------------------- URLs with userinfo
def test_credentials_inside_urls_are_not_repeated(sweep, fake_gcs, tmp_path):
    import gcsfs

    password = sweep.secret("URL password", "FAKEurl-password-0123456789")
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False)
    src = str(data.root)
    sweep.cli("copy", src, f"https://{S3_KEY_ID}:{password}@bucket/x", expect=2, says="not a destination URL")
    sweep.cli("copy", src, f"s3://{S3_KEY_ID}:{password}@bucket/x", expect=2, says="take no credentials")
    bucket = f"s{uuid.uuid4().hex[:12]}"
    gcsfs.GCSFileSystem(endpoint_url=fake_gcs.endpoint_url, token="anon", project="t", skip_instance_cache=True).mkdir(bucket)
    with_password = fake_gcs.endpoint_url.replace("http://", f"http://user:{password}@")
    sweep.cli("copy", src, f"gs://{bucket}/m", "--endpoint-url", with_password, "--json", expect=0)
    sweep.assert_clean()


# ------------------------------------------------------------------ -vv debug output and secrets nested in JSON
SESSION_TOKEN = "FAKEsession/TOKEN+0123456789abcdefghijklmnop=="
SSE_C_KEY = "FAKE-sse-c-key-32-bytes-long!!!!"  # the raw 256-bit key, as boto3 takes it; botocore sends base64(key)
MASK = "***"


def test_session_token_is_masked_in_botocore_debug_output(sweep, s3_bucket, tmp_path):
    token = sweep.secret("AWS session token", SESSION_TOKEN)
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)
    src, ep = str(data.root), ("--endpoint-url", s3_bucket.endpoint_url)
    env = {"AWS_SESSION_TOKEN": token}
    _, _, err = sweep.spawn("copy", src, f"{s3_bucket.url}/vv", *ep, "-vv", env=env, expect=0)
    assert "botocore.auth" in err, "botocore's debug output is on"
    log = tmp_path / "sync.jsonl"
    sweep.spawn("sync", src, f"{s3_bucket.url}/s", *ep, "--json-log", str(log), "-vv", env=env, expect=0)
    assert log.stat().st_size > 0
    sweep.assert_clean()
    assert f"x-amz-security-token:{MASK}" in err, "the signed header is still shown, its value masked"


def test_sse_c_key_in_object_parameters_is_masked_in_cutover_and_debug_output(sweep, s3_bucket, tmp_path,
                                                                              monkeypatch):
    sweep.secret("SSE-C key", SSE_C_KEY)  # its base64 form (what goes on the wire) is searched for too
    params = json.dumps({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY})
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)
    src, url, ep = str(data.root), f"{s3_bucket.url}/m", ("--endpoint-url", s3_bucket.endpoint_url)
    held = _user_file(sweep, tmp_path / "deploy" / "env.list",
                      f"STORAGE_TYPE=s3\nSTORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=m\n"
                      f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\nSTORAGE_AWS_OBJECT_PARAMETERS={params}\n")
    _, out, err = sweep.spawn("copy", src, url, "--env-file", str(held), "-vv", expect=0)
    assert "SSE-C" in out and "botocore.auth" in err, "the copy ran under SSE-C, with debug output on"

    # Written by the switch (from the environment): the added line keeps its other parameters readable.
    monkeypatch.setenv("STORAGE_AWS_OBJECT_PARAMETERS", params)
    fresh = _user_file(sweep, tmp_path / "fresh" / "env.list", "# Label Studio\nLABEL_STUDIO_HOST=http://ls:8080\n")
    cut = ("cutover", "--data-dir", src, "--env-file", str(fresh), "--to", url, *ep, "--dry-run")
    text = sweep.cli(*cut, expect=0, says="+STORAGE_AWS_OBJECT_PARAMETERS=").stdout
    diff = json.loads(sweep.cli(*cut, "--json", expect=0).stdout)["diff"]
    monkeypatch.delenv("STORAGE_AWS_OBJECT_PARAMETERS")

    # Already in the file being switched (which already points there: the lines the switch adds after it show
    # it as context; a line whose value stays is not rewritten).
    cut = ("cutover", "--data-dir", src, "--env-file", str(held), "--to", url, *ep, "--dry-run", "--no-nginx")
    sweep.cli(*cut, expect=0, says="SSECustomerKey")
    sweep.cli(*cut, "--json", expect=0, says="SSECustomerKey")
    sweep.assert_clean()
    shown = f'"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "{MASK}"'
    assert shown in text and shown in diff and "+STORAGE_AWS_OBJECT_PARAMETERS=" in diff, (text, diff)
    assert f"x-amz-server-side-encryption-customer-key:{MASK}" in err, "botocore's signed header, masked"


def test_gcs_private_key_stays_out_of_debug_output_and_cutover(sweep, fake_gcs, token_server, private_key_pem,
                                                               tmp_path):
    import gcsfs

    sweep.secret("GCS access token", GCS_TOKEN)
    account = _service_account(sweep, tmp_path / "creds" / "sa.json", private_key_pem, token_server.url)
    sweep.secret("private key id", json.loads(account.read_text())["private_key_id"])
    dummy = "-----BEGIN PRIVATE KEY-----\nFAKEdummyPRIVATEkeyNOTaKEY0123456789abcdefghijklmnopqrstuv\n-----END PRIVATE KEY-----\n"
    unusable = _service_account(sweep, tmp_path / "creds" / "dummy.json", dummy, token_server.url)
    bucket = f"s{uuid.uuid4().hex[:12]}"
    gcsfs.GCSFileSystem(endpoint_url=fake_gcs.endpoint_url, token="anon", project="t", skip_instance_cache=True).mkdir(bucket)
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False)
    src, url, ep = str(data.root), f"gs://{bucket}/m", ("--endpoint-url", fake_gcs.endpoint_url)
    (_, _, err), _ = sweep.spawn_all([
        (("copy", src, url, *ep, "-vv"), {"GOOGLE_APPLICATION_CREDENTIALS": str(account)}, 0, None),
        (("doctor", "--to", url, *ep, "-vv"), {"GOOGLE_APPLICATION_CREDENTIALS": str(unusable)}, 2, "cannot be used"),
    ])
    assert token_server.hits >= 1 and " gcsfs" in err, "the key was used, with debug output on"

    # The chart's inline applicationCredentialsJSON, a block scalar: its lines show as context in the diff.
    document = json.dumps({"type": "service_account", "project_id": "fake-project", "client_email": "ls@fake.iam",
                           "private_key_id": "fedcba9876543210fedcba9876543210fedcba98", "private_key": private_key_pem},
                          indent=2)
    sweep.secret("inline private key id", "fedcba9876543210fedcba9876543210fedcba98")
    values = _user_file(sweep, tmp_path / "helm" / "values.yaml",
                        "global:\n  persistence:\n    enabled: false\n    type: volume\n    config:\n      gcs:\n"
                        "        applicationCredentialsJSON: |\n"
                        + "".join(f"          {line}\n" for line in document.splitlines())
                        + "        projectID: fake-project\n        bucket: \"\"\n")
    cut = ("cutover", "--data-dir", src, "--values", str(values), "--to", url, *ep, "--dry-run")
    text = sweep.cli(*cut, expect=0, says="+        bucket:").stdout
    diff = json.loads(sweep.cli(*cut, "--json", expect=0).stdout)["diff"]
    sweep.assert_clean()
    assert f'"private_key": "{MASK}"' in text and f'"private_key": "{MASK}"' in diff, text


def test_azure_keys_and_sas_stay_out_of_debug_output_and_cutover(sweep, azurite, tmp_path):
    from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

    sweep.secret("account key in use", azurite.account_key)
    sweep.secret("wrong account key", AZURE_FAKE_KEY)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"s{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    expiry = datetime.now(timezone.utc) + timedelta(hours=1)
    sas = generate_container_sas(azurite.account_name, container, account_key=azurite.account_key, expiry=expiry,
                                 permission=ContainerSasPermissions(read=True, write=True, list=True, add=True,
                                                                    create=True, delete=True))
    old_sas = generate_container_sas("oldaccount", "old", account_key=AZURE_FAKE_KEY, expiry=expiry,
                                     permission=ContainerSasPermissions(read=True, list=True))
    for name, token in (("SAS", sas), ("old SAS", old_sas)):
        sweep.secret(f"{name} signature", dict(p.split("=", 1) for p in token.split("&"))["sig"])
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False)
    src, url, ep = str(data.root), f"az://{container}/m", ("--endpoint-url", azurite.blob_endpoint)
    # Credentials the operator commented out, next to the lines the switch changes: lsmigrate never read
    # them, so only their shape can tell they are secret.
    settings = _user_file(sweep, tmp_path / "deploy" / "env.list",
                          f"STORAGE_TYPE=azure\nSTORAGE_AZURE_CONTAINER_NAME={container}\n"
                          f"STORAGE_AZURE_ACCOUNT_NAME={azurite.account_name}\n"
                          f"STORAGE_AZURE_ACCOUNT_KEY={azurite.account_key}\n"
                          "# before the move: DefaultEndpointsProtocol=https;"
                          f"AccountName=oldaccount;AccountKey={AZURE_FAKE_KEY};EndpointSuffix=core.windows.net\n"
                          f"# auditors: https://oldaccount.blob.core.windows.net/old?{old_sas}\n"
                          "STORAGE_AZURE_FOLDER=old\n")
    wrong = azurite.connection_string.replace(azurite.account_key, AZURE_FAKE_KEY)
    runs = sweep.spawn_all([
        (("copy", src, url, "--env-file", str(settings), *ep, "-vv"), {}, 0, None),
        (("copy", src, f"az://{container}/sas", "-vv"),
         {"AZURE_STORAGE_CONNECTION_STRING": f"BlobEndpoint={azurite.blob_endpoint};SharedAccessSignature={sas}"},
         0, None),
        (("copy", src, f"az://{container}/wrong", "-vv"), {"AZURE_STORAGE_CONNECTION_STRING": wrong}, 2,
         "credentials were rejected"),
    ])
    assert all("azure.core" in err for _, _, err in runs), "the Azure SDK's debug output is on"
    # The file serves from folder old: switching it to m is a move, on purpose only.
    cut = ("cutover", "--data-dir", src, "--env-file", str(settings), "--to", url, *ep, "--dry-run",
           "--move-from-current")
    text = sweep.cli(*cut, expect=0, says="+STORAGE_AZURE_FOLDER=m").stdout
    diff = json.loads(sweep.cli(*cut, "--json", expect=0).stdout)["diff"]
    sweep.assert_clean()
    assert "sig=" in runs[1][2], "the SAS's URLs are logged, with the signature masked"
    for shown in (text, diff):
        assert f"AccountKey={MASK};" in shown and f"sig={MASK}" in shown and "oldaccount" in shown, shown
