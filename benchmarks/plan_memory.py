"""Memory and time of `lsmigrate plan` on a data dir with many files (default 200,000).

    .venv/bin/python benchmarks/plan_memory.py                  # 200,000 files, rclone serve s3
    .venv/bin/python benchmarks/plan_memory.py --files 20000 --server moto

The data dir is a real Label Studio layout (label_studio.sqlite3, media/upload/<project>/<uuid8>-<name>,
avatars, exports, odd names, from tests/lsdata.make_data_dir) plus N bulk upload files, most of them
empty and every 8th a few bytes, spread over projects of unequal size. It is generated once under
benchmarks/work/plan-data/ and reused. The destination bucket is empty, so the plan lists nothing remote
and every file is "to copy".

Measured: wall seconds of the `lsmigrate plan ... --json` process, its peak RSS (kernel ru_maxrss via
os.wait4) and CPU seconds; the JSON's total.files must equal N (and to_copy.files too).
The result is added as a row to the "plan memory" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path

from benchcommon import (
    ACCESS_KEY,
    RESULTS_MD,
    SECRET_KEY,
    WORK_DIR,
    command_line,
    isolated_env,
    machine_markdown,
    now_utc,
    run_measured,
    s3_client,
    section_body,
    snapshot_lsmigrate,
    tail,
    tool,
    wait_quiet,
    write_section,
)

SECTION = "plan memory"
_TEMPLATES = ("image_{:06d}.jpg", "IMG_20240501_{:06d}.JPG", "photo-{:06d}.png", "tasks_{:06d}.json",
              "notes_{:06d}.txt", "audio_clip_{:06d}.mp3", "frame{:06d}.jpeg")


def generate(n_files: int, regen: bool) -> tuple[Path, int, float]:
    """A data dir with exactly n_files files under media/. Returns (root, files, seconds spent, 0 if reused)."""
    from lsdata import make_data_dir

    base = WORK_DIR / "plan-data" / f"files-{n_files}"
    manifest = base / "manifest.json"
    if manifest.exists() and not regen:
        saved = json.loads(manifest.read_text())
        if saved.get("files") == n_files and saved.get("v") == 1:
            return base / "datadir", n_files, 0.0
    if base.exists():
        shutil.rmtree(base)
    t0 = time.perf_counter()
    root = base / "datadir"
    # The realistic skeleton: database, avatars, exports, odd names, empty files, legacy flat uploads.
    dd = make_data_dir(root, projects=3, uploads_per_project=10, seed=11)
    bulk = n_files - len(dd.files)
    if bulk < 0:
        raise SystemExit(f"--files must be at least {len(dd.files)} (the skeleton alone has that many)")
    rng = random.Random(n_files)
    n_projects = max(3, n_files // 5000)
    weights = [1.0 / (k + 1) ** 0.8 for k in range(n_projects)]  # a few big projects, many small ones
    projects = rng.choices(range(1, n_projects + 1), weights=weights, k=bulk)
    made_dirs: set[int] = set()
    seen: set[str] = set()
    tiny = os.urandom(64)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    media = dd.media
    for i, pid in enumerate(projects):
        d = media / "upload" / str(pid)
        if pid not in made_dirs:
            d.mkdir(parents=True, exist_ok=True)
            made_dirs.add(pid)
        while True:
            u = f"{rng.getrandbits(32):08x}"
            if u not in seen:
                seen.add(u)
                break
        name = f"{u}-{_TEMPLATES[i % len(_TEMPLATES)].format(i)}"
        fd = os.open(os.path.join(d, name), flags, 0o644)
        try:
            if i % 8 == 0:
                os.write(fd, tiny[: 1 + i % 64])
        finally:
            os.close(fd)
    seconds = time.perf_counter() - t0
    manifest.write_text(json.dumps({"files": n_files, "v": 1, "projects": n_projects}))
    return root, n_files, seconds


def existing_rows() -> list[str]:
    body = section_body(RESULTS_MD, SECTION) or ""
    return [line for line in body.splitlines() if re.match(r"^\| \d{4}-\d\d-\d\d ", line)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200_000, help="files under media/ (default 200,000)")
    ap.add_argument("--server", choices=("rclone", "moto"), default="rclone",
                    help="rclone serve s3 (default) or moto_server; the bucket is empty either way")
    ap.add_argument("--regen", action="store_true", help="regenerate the data dir even if present")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--quiet-wait", type=float, default=120.0,
                    help="wait up to this many seconds for other processes to go under 0.15 cores first")
    ap.add_argument("--max-other-load", type=float, default=0.25,
                    help="measure again when other processes used more cores than this meanwhile")
    ap.add_argument("--retry-noisy", type=int, default=3, help="extra attempts allowed (default 3)")
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = ap.parse_args(argv)

    from servers import MotoServer, RcloneS3Server

    started = now_utc()
    print(f"[data] {args.files:,} files ...", flush=True)
    root, n, gen_seconds = generate(args.files, args.regen)
    how = f"generated in {gen_seconds:.1f} s" if gen_seconds else "reused"
    print(f"[data] {root}: {n:,} files ({how})", flush=True)
    os.sync()

    server_root = WORK_DIR / "plan-server-root"
    if args.server == "rclone":
        shutil.rmtree(server_root, ignore_errors=True)
        server = RcloneS3Server(server_root, ACCESS_KEY, SECRET_KEY)
    else:
        server = MotoServer()
    snapshot, source_id = snapshot_lsmigrate()  # one version, byte-compiled (see benchcommon)
    print(f"[lsmigrate] measuring {source_id} at {snapshot}", flush=True)
    with server:
        env = {**isolated_env(WORK_DIR, server.endpoint_url), "PYTHONPATH": str(snapshot)}
        bucket = f"plan-{int(time.time())}"
        s3_client(server.endpoint_url).create_bucket(Bucket=bucket)
        state = WORK_DIR / "state" / f"{bucket}.journal"
        state.parent.mkdir(parents=True, exist_ok=True)
        cmd = [tool("lsmigrate"), "plan", "--data-dir", str(root), "--to", f"s3://{bucket}/f",
               "--endpoint-url", server.endpoint_url, "--state", str(state), "--json"]
        print(f"[plan] {' '.join(cmd)}", flush=True)
        # The machine is shared: wait for a quiet moment, and measure again when other processes took
        # more than --max-other-load cores meanwhile (the quietest attempt is kept).
        attempts = []
        for attempt in range(1, args.retry_noisy + 2):
            wait_quiet(args.quiet_wait, 0.15, (server.pid,))
            if state.exists():
                state.unlink()
            m = run_measured(cmd, env=env, log_stem=WORK_DIR / "logs" / f"{bucket}-a{attempt}",
                             server_pid=server.pid, timeout=args.timeout, cwd=WORK_DIR)
            attempts.append(m)
            load = m.other_cpu / m.wall if m.wall else 0.0
            if load <= args.max_other_load or m.returncode != 0:
                break
            print(f"[plan] other processes used {load:.2f} cores meanwhile ({m.wall:.2f} s): measuring again",
                  flush=True)
        m = min(attempts, key=lambda a: a.other_cpu / a.wall if a.wall else 0.0)
    if args.server == "rclone":
        shutil.rmtree(server_root, ignore_errors=True)
    if state.exists():
        state.unlink()

    problems = []
    total = to_copy = None
    if m.returncode != 0:
        problems.append(f"exit code {m.returncode}: {tail(m.stderr_path, 800)}")
    try:
        doc = json.loads(Path(m.stdout_path).read_text())
        total, to_copy = doc["total"]["files"], doc["to_copy"]["files"]
        if total != n:
            problems.append(f"JSON total.files = {total}, expected {n}")
        if to_copy != n:
            problems.append(f"JSON to_copy.files = {to_copy}, expected {n}")
        if doc.get("problems"):
            problems.append(f"{len(doc['problems'])} problems reported, first: {doc['problems'][:2]}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"no usable JSON on stdout ({exc.__class__.__name__}: {exc})")
    ok = not problems
    print(f"[plan] files {n:,}: {m.wall:.2f} s wall, CPU {m.cpu:.2f} s ({m.cpu_user:.2f} user + "
          f"{m.cpu_sys:.2f} sys), peak RSS {m.maxrss_mib:.1f} MiB (polled {m.tree_peak_rss_mib:.1f}), "
          f"server CPU {m.server_cpu or 0:.2f} s, JSON total {total}: {'OK' if ok else 'FAILED: ' + '; '.join(problems)}",
          flush=True)

    row = (f"| {started} | {n:,} | {args.server} | {m.wall:.2f} | {n / m.wall:,.0f} | {m.maxrss_mib:.1f} | "
           f"{m.cpu:.2f} | {m.server_cpu or 0:.2f} | {m.other_cpu / m.wall if m.wall else 0:.2f} | "
           f"{total if total is not None else 'n/a'} | {source_id} | "
           f"{'ok' if ok else 'FAILED: ' + '; '.join(problems).replace('|', '/')} | `{command_line()}` |")
    if not args.no_write:
        rows = [*existing_rows(), row]
        body = "\n".join([
            "## Plan memory: `lsmigrate plan` on many small files",
            "",
            "Written by `benchmarks/plan_memory.py`; every run adds a row. The data dir is a Label Studio layout "
            "(`media/upload/<project>/<uuid8>-<name>`, most files empty, every 8th 1-64 bytes, projects of "
            "unequal size) plus the usual avatars/exports/odd names; the destination bucket is empty. "
            "Command measured: `lsmigrate plan --data-dir D --to s3://BUCKET/f --endpoint-url URL "
            "--state FRESH --json`.",
            "",
            "| date | files | server | wall s | files/s | peak RSS MiB | client CPU s | server CPU s "
            "| other processes, cores | JSON total.files | lsmigrate | check | command |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Peak RSS: `ru_maxrss` of the lsmigrate process (kernel high-water mark, from `os.wait4`). "
            "CPU: user+sys of that process. Wall: process start to exit (Python start-up included). Other "
            "processes: average cores used by the rest of the machine meanwhile (it is shared; > 0.25 means "
            "the wall time is inflated). lsmigrate: git commit and source hash of the byte-compiled copy "
            "measured (see README).",
            "",
            "Machine (latest run):",
            "",
            machine_markdown(["lsmigrate", "rclone"] if args.server == "rclone" else ["lsmigrate", "moto"]),
        ])
        write_section(RESULTS_MD, SECTION, body)
        print(f"written: {RESULTS_MD} (section '{SECTION}')")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
