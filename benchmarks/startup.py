"""Start-up: wall and CPU of copying one 2-byte file to S3, lsmigrate next to rclone, s5cmd and aws.

    .venv/bin/python benchmarks/startup.py                 # 7 rounds, every tool found, rclone serve s3
    .venv/bin/python benchmarks/startup.py --rounds 3 --tools lsmigrate,s5cmd --no-write

A copy of one small file is nearly all fixed cost: the interpreter or binary starting, imports, clients
built, one listing and one PUT. Each run copies into a fresh prefix of one bucket (lsmigrate with a fresh
journal), the object is checked afterwards, and the tools alternate (the order rotates each round). The
machine is shared, so the figures are the minimum and the median over the rounds. lsmigrate runs from a
byte-compiled snapshot of lsmigrate/, as an installed copy would (run.py does the same).
Writes the `startup` section of RESULTS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from benchcommon import (
    ACCESS_KEY,
    RESULTS_MD,
    SECRET_KEY,
    WORK_DIR,
    command_line,
    isolated_env,
    list_objects,
    now_utc,
    run_measured,
    s3_client,
    snapshot_lsmigrate,
    tail,
    tool,
    write_section,
)
from servers import RcloneS3Server

ALL_TOOLS = ("lsmigrate", "rclone", "s5cmd", "aws")
BUCKET = "startup"


def command(name: str, source: Path, prefix: str, endpoint: str, state: Path) -> list[str]:
    if name == "lsmigrate":
        return [tool("lsmigrate"), "copy", str(source), f"s3://{BUCKET}/{prefix}", "--endpoint-url", endpoint,
                "--state", str(state), "--quiet"]
    if name == "rclone":
        return [tool("rclone"), "copy", str(source), f"BENCH:{BUCKET}/{prefix}"]
    if name == "s5cmd":
        return [tool("s5cmd"), "--endpoint-url", endpoint, "--log", "error", "cp", f"{source}/*",
                f"s3://{BUCKET}/{prefix}/"]
    return [tool("aws"), "--endpoint-url", endpoint, "s3", "sync", str(source), f"s3://{BUCKET}/{prefix}/",
            "--only-show-errors"]


def available(names: list[str]) -> list[str]:
    found = []
    for name in names:
        try:
            tool(name)
        except SystemExit as exc:
            print(f"  {name}: skipped ({exc})", file=sys.stderr)
            continue
        found.append(name)
    return found


def measure(tools: list[str], rounds: int, work: Path) -> tuple[dict[str, list], str]:
    source = work / "one-file"
    source.mkdir(parents=True, exist_ok=True)
    (source / "a.txt").write_bytes(b"hi")
    snapshot, source_id = snapshot_lsmigrate()
    runs: dict[str, list] = {name: [] for name in tools}
    with RcloneS3Server(work / "server", ACCESS_KEY, SECRET_KEY) as server:
        env = isolated_env(work / "env", server.endpoint_url)
        client = s3_client(server.endpoint_url)
        client.create_bucket(Bucket=BUCKET)
        for rnd in range(rounds):
            for name in tools[rnd % len(tools):] + tools[:rnd % len(tools)]:
                prefix = f"{name}-{rnd}"
                run_env = {**env, "PYTHONPATH": str(snapshot)} if name == "lsmigrate" else env
                m = run_measured(command(name, source, prefix, server.endpoint_url, work / f"{prefix}.journal"),
                                 env=run_env, log_stem=work / "logs" / prefix, server_pid=server.pid, cwd=work)
                if m.returncode != 0 or list_objects(client, BUCKET, prefix + "/") != {f"{prefix}/a.txt": 2}:
                    raise SystemExit(f"{name} failed (exit {m.returncode}): {tail(m.stderr_path, 600)}")
                runs[name].append(m)
                print(f"  round {rnd + 1} {name:<9} wall {m.wall:.3f} s  cpu {m.cpu:.3f} s", flush=True)
    return runs, source_id


def table(runs: dict[str, list]) -> str:
    lines = ["| tool | wall min | wall median | CPU min | CPU median | runs |", "|---|---|---|---|---|---|"]
    for name, ms in runs.items():
        walls, cpus = [m.wall for m in ms], [m.cpu for m in ms]
        lines.append(f"| {name} | {min(walls):.3f} s | {statistics.median(walls):.3f} s | {min(cpus):.3f} s | "
                     f"{statistics.median(cpus):.3f} s | {len(ms)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tools", default=",".join(ALL_TOOLS), help="subset of " + ",".join(ALL_TOOLS))
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    tools = available([t for t in args.tools.split(",") if t])
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="startup-", dir=WORK_DIR) as tmp:
        runs, source_id = measure(tools, args.rounds, Path(tmp))
    body = (f"## Start-up: one 2-byte file to S3\n\n{now_utc()}, `{command_line()}`, rclone serve s3 on "
            f"loopback, tools alternating, {args.rounds} rounds; lsmigrate {source_id}.\n\n{table(runs)}\n")
    print(body)
    if not args.no_write:
        write_section(RESULTS_MD, "startup", body)


if __name__ == "__main__":
    main()
