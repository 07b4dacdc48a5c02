"""Scale: `lsmigrate copy` of N tiny files, then the cutover window's last pass with nothing changed, both
as the same command again (the destination listed) and with `--no-traverse` (journal and local stat only),
then `plan`. Prints wall, CPU, peak RSS and time per file for each, and the server's CPU (the client and
`rclone serve s3` share the cores), and writes them to the `scale-N` section of RESULTS.md.

Run: .venv/bin/python benchmarks/scale.py 100000   (rclone serve s3 with its objects in /dev/shm)
     .venv/bin/python benchmarks/scale.py 1000000 --keep   (keep the generated tree for another run)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from benchcommon import RESULTS_MD, command_line, machine_markdown, now_utc, write_section
from servers import RcloneS3Server

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("files", type=int)
ap.add_argument("--keep", action="store_true", help="keep the generated tree (benchmarks/work/scale-N/src)")
ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
args = ap.parse_args()
N = args.files
root = Path(__file__).resolve().parent / "work" / f"scale-{N}"
src = root / "src"
if not (root / "generated").exists():
    shutil.rmtree(root, ignore_errors=True)
    t = time.time()
    for d in range(100):
        (src / f"p{d:03d}").mkdir(parents=True)
    for i in range(N):
        with open(src / f"p{i % 100:03d}" / f"f{i:07d}.txt", "wb") as f:
            f.write(b"x" * (i % 64))
    (root / "generated").touch()
    print(f"generated {N} files in {time.time() - t:.1f}s", flush=True)
state = root / "journal.sqlite3"
for leftover in root.glob("journal.sqlite3*"):
    leftover.unlink()
srv_root = Path(f"/dev/shm/scale-srv-{os.getpid()}")
shutil.rmtree(srv_root, ignore_errors=True)
(srv_root / "scale").mkdir(parents=True)
lsmigrate = str(Path(sys.executable).parent / "lsmigrate")
rows = []
try:
    with RcloneS3Server(srv_root, "testing", "testing") as srv:
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="us-east-1")
        common = [str(src), "s3://scale/x", "--endpoint-url", srv.endpoint_url, "-q", "--json", "--state", str(state)]
        runs = [("copy", ["copy", *common]), ("re-run, nothing changed", ["copy", *common]),
                ("re-run --no-traverse", ["copy", *common, "--no-traverse"]), ("plan", ["plan", *common])]
        server = psutil.Process(srv.pid)
        for label, cmd in runs:
            server_before = sum(server.cpu_times()[:2])
            t = time.time()
            p = subprocess.Popen([lsmigrate, *cmd], env=env, stdout=subprocess.PIPE)
            out = p.stdout.read()
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.time() - t
            server_cpu = sum(server.cpu_times()[:2]) - server_before
            doc = json.loads(out)
            counts = (f"copied={doc['copied']} skipped={doc['skipped']}" if "copied" in doc
                      else f"to_copy={doc['to_copy']['files']} total={doc['total']['files']}")
            cpu = ru.ru_utime + ru.ru_stime
            print(f"{label}: rc={status >> 8} wall={wall:.1f}s cpu={cpu:.1f}s server-cpu={server_cpu:.1f}s "
                  f"maxrss={ru.ru_maxrss / 1024:.0f}MiB {counts} per-file={wall / N * 1e6:.0f}us", flush=True)
            rows.append(f"| {label} | {status >> 8} | {wall:,.1f} | {wall / N * 1e6:,.0f} | {cpu:,.1f} | "
                        f"{cpu / N * 1e6:,.0f} | {server_cpu:,.1f} | {ru.ru_maxrss / 1024:,.0f} | {counts} |")
finally:
    shutil.rmtree(srv_root, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)

if not args.no_write and len(rows) == 4:
    write_section(RESULTS_MD, f"scale-{N}", "\n".join([
        f"## Scale: {N:,} tiny files ({now_utc()})", "",
        f"Command: `{command_line()}`. Server: `rclone serve s3` over /dev/shm. One journal for all four runs; the "
        "three after the copy find nothing changed. lsmigrate runs with `-q --json`.", "",
        "| run | exit | wall s | wall us/file | client CPU s | client CPU us/file | server CPU s | client peak RSS MiB | counts |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        machine_markdown(["lsmigrate", "rclone"]),
    ]))
