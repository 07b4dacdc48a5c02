"""The real Label Studio for the end-to-end tests: its own venv, its process, its HTTP API.

No pytest here (conftest.py and the tests use it). What it knows of Label Studio 1.23 comes from
/work/shared/LABEL_STUDIO.md and TESTBED.md and from running it:

- `label-studio --version` starts a server: the installed version is read from the package metadata.
- The first start of a fresh data dir runs the migrations (35-80 s on the 2-core machine); a later start
  of a migrated data dir, or of a copy of one, takes under 15 s.
- Uploaded names go through Django's get_valid_filename: spaces become underscores, unicode stays.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import http.client
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

_TESTS = Path(__file__).resolve().parent.parent
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from servers import HOST, free_port, terminate  # noqa: E402

REPO_ROOT = _TESTS.parent
LS_VERSION = "1.23.2"
LS_REQUIREMENT = f"label-studio=={LS_VERSION}"
LS_VENV = Path(os.environ.get("LSMIGRATE_E2E_LS_VENV") or REPO_ROOT / ".venv-ls")
FIRST_START_TIMEOUT = 300.0  # migrations of a fresh data dir, on a loaded 2-core machine
START_TIMEOUT = 120.0
STOP_GRACE = 10.0

#: Lines for the end-of-run summary (conftest prints them whether the tests pass or fail).
REPORT: list[str] = []


def report(line: str) -> None:
    REPORT.append(line)


# ------------------------------------------------------------------------------------------ the venv
def _stamp(venv: Path) -> Path:
    return venv / ".lsmigrate-e2e-installed"


def _find_uv() -> str | None:
    here = Path(sys.executable).parent / "uv"
    if here.is_file():
        return str(here)
    return shutil.which("uv")


def installed_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.is_file():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('label-studio'))"],
        capture_output=True, text=True, timeout=120,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_label_studio(venv: Path = LS_VENV) -> tuple[float, str]:
    """label-studio==LS_VERSION in its own venv, built once and reused while its stamp matches.

    Returns the seconds spent building (0.0 when the venv was there already) and what built it. uv (from
    the test extra) builds it in 20-30 s from an empty cache; pip is the fallback (2-3.5 min). A lock keeps
    two test runs in one work tree from building it at the same time.
    """
    wanted = f"{LS_REQUIREMENT} python={sys.version_info[0]}.{sys.version_info[1]}\n"
    if _stamp(venv).is_file() and _stamp(venv).read_text() == wanted:
        return 0.0, "cached"
    lock_path = Path(tempfile.gettempdir()) / f"lsmigrate-e2e-{hashlib.md5(str(venv).encode()).hexdigest()[:12]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamp(venv).is_file() and _stamp(venv).read_text() == wanted:
            return 0.0, "cached"
        t0 = time.monotonic()
        log = Path(tempfile.gettempdir()) / f"{lock_path.stem}-build.log"
        log.write_bytes(b"")
        base_python = getattr(sys, "_base_executable", None) or sys.executable
        builders: list[tuple[str, dict[str, str], list[list[str]]]] = []
        uv = _find_uv()
        if uv:
            # The platform's certificates, as pip is configured to use here (a TLS-inspecting proxy's CA is
            # there): uv's own bundle does not have it. Both names: older uv reads UV_NATIVE_TLS, newer UV_SYSTEM_CERTS.
            env = {"UV_LINK_MODE": "copy", "UV_NATIVE_TLS": "1", "UV_SYSTEM_CERTS": "1", **os.environ}
            builders.append(("uv", env, [
                [uv, "venv", "--quiet", "--python", base_python, str(venv)],
                [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), LS_REQUIREMENT],
            ]))
        builders.append(("pip", dict(os.environ), [
            [base_python, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             LS_REQUIREMENT],
        ]))
        built_by = None
        for name, env, steps in builders:
            shutil.rmtree(venv, ignore_errors=True)
            if _run_steps(steps, env, log):
                built_by = name
                break
        if built_by is None:
            raise RuntimeError(f"building {venv} failed; log {log}:\n{log.read_text(errors='replace')[-3000:]}")
        got = installed_version(venv)
        if got != LS_VERSION:
            raise RuntimeError(f"{venv} holds label-studio {got!r}, not {LS_VERSION}")
        (venv / ".gitignore").write_text("*\n")  # git ignores the venv whoever built it (uv writes one too)
        _stamp(venv).write_text(wanted)
        return time.monotonic() - t0, built_by


def _run_steps(steps: list[list[str]], env: dict[str, str], log: Path) -> bool:
    with open(log, "ab") as out:
        for step in steps:
            out.write(f"$ {' '.join(step)}\n".encode())
            out.flush()
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=1200).returncode != 0:
                return False
    return True


# ------------------------------------------------------------------------------------ env.list files
def read_env_list(path: Path) -> dict[str, str]:
    """`docker run --env-file` semantics: `NAME=VALUE` lines, the value taken verbatim (quotes kept), lines
    starting with `#` and blank lines skipped. A bare `NAME` (take it from the host) is not used here."""
    found: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}:{number}: {name!r} takes its value from the host; not expected here")
        found[name] = value
    return found


# ------------------------------------------------------------------------------------- the process
def base_environment(home: Path, data_dir: Path) -> dict[str, str]:
    """What Label Studio's process gets besides the deployment file's variables. None of these is a storage
    setting: a PATH, a HOME of its own, the data dir (the Docker image sets LABEL_STUDIO_BASE_DATA_DIR the
    same way), and four switches that keep it from calling pypi.org and sentry.io."""
    return {
        "PATH": f"{LS_VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
    }


# Label Studio processes still running when the interpreter exits (a crashed or interrupted run).
_live: set[LabelStudio] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        server.stop()


class LabelStudio:
    """One `label-studio start` on 127.0.0.1 (its Django server, no nginx), stopped by its PID."""

    def __init__(self, data_dir: Path, variables: Mapping[str, str], *, workdir: Path, name: str,
                 pythonpath: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.variables = dict(variables)
        self.workdir = Path(workdir)
        self.name = name
        self.pythonpath = pythonpath
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"label-studio-{name}.log"
        self.start_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def environment(self) -> dict[str, str]:
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = base_environment(home, self.data_dir)
        env.update(self.variables)  # exactly the deployment file's variables
        if self.pythonpath is not None:
            env["PYTHONPATH"] = str(self.pythonpath)
        return env

    def start(self, timeout: float = START_TIMEOUT) -> LabelStudio:
        t0 = time.monotonic()
        for attempt in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                log.write(f"\n=== {self.name} on port {self.port}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(
                    [str(LS_VENV / "bin" / "label-studio"), "start", "--no-browser",
                     "--internal-host", HOST, "--port", str(self.port), "--data-dir", str(self.data_dir)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                    env=self.environment(), start_new_session=True,
                )
            _live.add(self)
            if self._wait_healthy(timeout - (time.monotonic() - t0)):
                self.start_seconds = time.monotonic() - t0
                return self
            if attempt == 2 or time.monotonic() - t0 > timeout:
                break
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"Label Studio ({self.name}) did not become healthy; log {self.log_path}:\n{tail}")

    def _wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(timeout, 1.0)
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                self.proc = None
                return False  # died at once (a port taken meanwhile): try again on another
            conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
            try:
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.5)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        _live.discard(self)
        if proc is not None:
            terminate(proc, STOP_GRACE)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> LabelStudio:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------ the HTTP API
class Client:
    """Label Studio's HTTP API as a user: signed up through the form, then a personal access token (JWT
    refresh token) exchanged for short-lived access tokens, as the API docs describe."""

    def __init__(self, base: str, refresh_token: str) -> None:
        self.base = base
        self.refresh_token = refresh_token
        self.http = requests.Session()
        self.reauthenticate()

    @staticmethod
    def sign_up(base: str, email: str, password: str) -> str:
        """A new user through /user/signup/, then POST /api/token/ with its session: the token."""
        form = requests.Session()
        form.get(f"{base}/user/signup/", timeout=60).raise_for_status()
        answer = form.post(
            f"{base}/user/signup/",
            data={"email": email, "password": password, "csrfmiddlewaretoken": form.cookies["csrftoken"]},
            headers={"Referer": f"{base}/user/signup/"}, allow_redirects=False, timeout=60,
        )
        if answer.status_code != 302:
            raise AssertionError(f"sign-up answered {answer.status_code}: {answer.text[:500]}")
        token = form.post(f"{base}/api/token/", headers={"X-CSRFToken": form.cookies["csrftoken"], "Referer": base},
                          timeout=60)
        if token.status_code != 201:
            raise AssertionError(f"POST /api/token/ answered {token.status_code}: {token.text[:500]}")
        return token.json()["token"]

    def reauthenticate(self) -> None:
        answer = requests.post(f"{self.base}/api/token/refresh/", json={"refresh": self.refresh_token}, timeout=60)
        if answer.status_code != 200:
            raise AssertionError(f"POST /api/token/refresh/ answered {answer.status_code}: {answer.text[:500]}")
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access']}"

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        answer = self.http.request(method, url, timeout=120, **kwargs)
        if answer.status_code == 401:  # access tokens live 5 minutes (simplejwt's default): get a new one
            self.reauthenticate()
            answer = self.http.request(method, url, timeout=120, **kwargs)
        return answer

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        answer = self._send(method, self.base + path, **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path} answered {answer.status_code}: {answer.text[:500]}")
        return answer

    def get(self, url: str) -> requests.Response:
        """A URL as Label Studio handed it out (relative to it, or absolute), not following redirects: what
        is checked is what Label Studio itself serves."""
        return self._send("GET", url if "://" in url else self.base + url, allow_redirects=False)

    def tasks(self, project: int) -> dict[int, dict]:
        found: dict[int, dict] = {}
        page = 1
        while True:
            doc = self.api("GET", "/api/tasks", params={"project": project, "page": page, "page_size": 100}).json()
            for task in doc["tasks"]:
                found[task["id"]] = task["data"]
            if len(found) >= doc.get("total", len(found)) or not doc["tasks"]:
                return found
            page += 1

    def whoami(self) -> dict:
        return self.api("GET", "/api/current-user/whoami").json()

    def file_upload(self, upload_id: int) -> dict:
        """`{"id", "file": its name under media/, "size": read from the storage}`."""
        return self.api("GET", f"/api/import/file-upload/{upload_id}").json()


# ---------------------------------------------------------------------------------------- the data
def png(seed: int, size: int = 24) -> bytes:
    """A small valid PNG whose pixels depend on `seed`."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(3 * size)) for _ in range(size))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def video(size: int, seed: int = 7) -> bytes:
    """`size` bytes that start like an MP4 (an ftyp box), the rest pseudo-random (incompressible)."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2"
    rng = random.Random(seed)
    return ftyp + rng.randbytes(size - len(ftyp))


def task_files() -> dict[str, bytes]:
    """What is uploaded: names with unicode and spaces, a zero-byte file, a video of a few MiB."""
    return {
        "café au lait.png": png(1),
        "日本語 の 画像.png": png(2),
        "Ünïcödé with spaces ü.png": png(3),
        "zero bytes.png": b"",
        "short clip.mp4": video(3 * 1024 * 1024 + 12345),
    }


AVATAR_NAME = "avatar ü.png"
AVATAR_BYTES = png(9, 32)
LABEL_CONFIG = ('<View><Image name="image" value="$image"/>'
                '<Choices name="choice" toName="image"><Choice value="yes"/><Choice value="no"/></Choices></View>')


@dataclass(frozen=True)
class Served:
    """One file Label Studio serves: under which URL it handed it out, and what it must be."""

    kind: str  # upload | avatar | export
    label: str  # for messages: the original name
    url: str  # as Label Studio handed it out before the switch
    rel: str  # its name under media/ (= the object name below the folder)
    content: bytes = field(repr=False)
    task_id: int | None = None
    upload_id: int | None = None


@dataclass
class Template:
    """A Label Studio data dir prepared once through the API; each cloud's test works on a copy."""

    data_dir: Path
    refresh_token: str
    project: int
    export_id: int
    served: list[Served]
    first_start_seconds: float
    prepare_seconds: float

    def by_kind(self, kind: str) -> list[Served]:
        return [item for item in self.served if item.kind == kind]


def media_rel(url: str) -> str:
    """`/data/upload/1/ab-x%C3%A9.png` -> `upload/1/ab-xé.png` (the name under media/ and in the database)."""
    path = unquote(urlsplit(url).path)
    assert path.startswith("/data/"), url
    return path[len("/data/"):]


def export_download_path(project: int, export_id: int) -> str:
    return f"/api/projects/{project}/exports/{export_id}/download?exportType=JSON"


def prepare_template(workdir: Path) -> Template:
    """Start Label Studio on a fresh data dir and, through its HTTP API: a user and token, a project, the
    task files, an avatar, an export. Remember every URL it hands out and check each serves what was sent."""
    t0 = time.monotonic()
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    ls = LabelStudio(data_dir, {}, workdir=workdir, name="template")
    with ls.start(FIRST_START_TIMEOUT):
        first_start = ls.start_seconds or 0.0
        token = Client.sign_up(ls.url, "e2e-owner@example.com", "e2e-Passw0rd-1")
        client = Client(ls.url, token)
        project = client.api("POST", "/api/projects", json={"title": "lsmigrate e2e", "label_config": LABEL_CONFIG}).json()["id"]
        files = task_files()
        imported = client.api(
            "POST", f"/api/projects/{project}/import",
            files=[(f"file{i}", (name, content)) for i, (name, content) in enumerate(files.items())],
        ).json()
        assert imported["task_count"] == len(files), imported
        me = client.whoami()
        client.api("POST", f"/api/users/{me['id']}/avatar", files={"avatar": (AVATAR_NAME, AVATAR_BYTES, "image/png")})
        export = client.api("POST", f"/api/projects/{project}/exports", json={}).json()
        deadline = time.monotonic() + 60
        while export["status"] != "completed":
            assert export["status"] not in ("failed",) and time.monotonic() < deadline, export
            time.sleep(0.5)
            export = client.api("GET", f"/api/projects/{project}/exports/{export['id']}").json()

        served: list[Served] = []
        tasks = client.tasks(project)
        # The FileUpload API names each upload (not a URL); task data holds its URL under /data/upload/...
        by_rel_upload = {client.file_upload(upload_id)["file"]: upload_id for upload_id in imported["file_upload_ids"]}
        stored_name_of = {_stored_name(name): name for name in files}
        for task_id, data in sorted(tasks.items()):
            url = data["image"]
            rel = media_rel(url)
            original = stored_name_of[rel.split("/")[-1].split("-", 1)[1]]
            served.append(Served("upload", original, url, rel, files[original], task_id=task_id,
                                 upload_id=by_rel_upload[rel]))
        avatar_url = client.whoami()["avatar"]
        served.append(Served("avatar", AVATAR_NAME, avatar_url, media_rel(avatar_url), AVATAR_BYTES))
        download = export_download_path(project, export["id"])
        exported = client.get(download)
        assert exported.status_code == 200 and exported.content, (exported.status_code, exported.text[:300])
        export_files = sorted((data_dir / "media" / "export").rglob("*.json"))
        assert len(export_files) == 1, export_files
        rel = export_files[0].relative_to(data_dir / "media").as_posix()
        served.append(Served("export", export_files[0].name, download, rel, export_files[0].read_bytes()))

        for item in served:  # the baseline: Label Studio on its local disk serves every one of them
            answer = client.get(item.url)
            assert answer.status_code == 200 and answer.content == item.content, (item, answer.status_code)
            assert (data_dir / "media" / item.rel).read_bytes() == item.content, item
    return Template(data_dir, token, project, export["id"], served, first_start, time.monotonic() - t0)


def _stored_name(original: str) -> str:
    """Django's get_valid_filename, as Label Studio applies it to an uploaded name."""
    import re

    return re.sub(r"(?u)[^-\w.]", "", original.strip().replace(" ", "_"))


def copy_data_dir(template: Template, dest: Path) -> Path:
    """A copy of the template's data dir (database, .env with its secret key, media/)."""
    shutil.copytree(template.data_dir, dest, symlinks=True)
    return dest


def media_files(data_dir: Path) -> set[str]:
    media = data_dir / "media"
    return {p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file()}
