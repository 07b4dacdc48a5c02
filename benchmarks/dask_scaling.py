"""`lsmigrate copy --executor dask` with 1, 2 and 4 local worker processes on the small-files set.

Run: .venv/bin/python benchmarks/dask_scaling.py [--files 2000 --size 102400 --rounds 2]
Writes its own section of benchmarks/RESULTS.md. Client, workers, scheduler and the S3 server all share
this machine's cores, so the figures show the overhead and the ceiling of scaling out on one box, not
what a cluster of machines (each with its own NIC and cores) would reach.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import benchcommon as bc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from distributed import LocalCluster
    from lsdata import make_flat_tree
    from servers import RcloneS3Server

    work = bc.WORK_DIR / "dask"
    data = work / "data"
    if not data.exists():
        make_flat_tree(data, args.files, args.size)
    rows = []
    with RcloneS3Server(work / "server-root", bc.ACCESS_KEY, bc.SECRET_KEY) as server:
        env = bc.isolated_env(work, server.endpoint_url)
        client = bc.s3_client(server.endpoint_url)
        import os

        os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
        for n in [int(x) for x in args.workers.split(",")]:
            with LocalCluster(n_workers=n, threads_per_worker=4, processes=True, dashboard_address=None,
                              host="127.0.0.1") as cluster:
                walls = []
                for r in range(args.rounds):
                    bucket = f"dask-{n}-{r}-{int(time.time())}"
                    client.create_bucket(Bucket=bucket)
                    cmd = [bc.tool("lsmigrate"), "copy", str(data), f"s3://{bucket}/d", "--endpoint-url",
                           server.endpoint_url, "--executor", "dask", "--scheduler", cluster.scheduler_address,
                           "--state", str(work / f"state-{bucket}.sqlite3"), "-q"]
                    m = bc.run_measured(cmd, env=env, log_stem=work / "logs" / bucket, server_pid=server.pid)
                    count = len(bc.list_objects(client, bucket, "d/"))
                    if m.returncode != 0 or count != args.files:
                        print(f"workers={n} round={r}: rc={m.returncode} objects={count}", file=sys.stderr)
                        continue
                    walls.append(m.wall)
                    print(f"workers={n} round={r}: {m.wall:.2f}s, {args.files / m.wall:.0f} files/s", flush=True)
                if walls:
                    wall = statistics.median(walls)
                    rows.append((n, len(walls), wall, args.files / wall, args.files * args.size / wall / 1e6))
    lines = [f"## Dask scale-out: small files ({bc.now_utc()})", "",
             f"Command: `{bc.command_line()}`  ",
             f"{args.files:,} x {args.size // 1024} KiB, `lsmigrate copy --executor dask` against `rclone serve s3`, "
             "LocalCluster with 4 threads per worker process, median of the rounds.", "",
             "| workers | ok runs | wall s | files/s | MB/s |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {ok} | {wall:.2f} | {fps:.0f} | {mbs:.1f} |" for n, ok, wall, fps, mbs in rows]
    lines += ["", "All of it (client, scheduler, workers, server) shares 2 cores here: more workers add "
              "processes competing for the same CPU, so this measures the executor's overhead, not a "
              "cluster's reach.", "", bc.machine_markdown(["lsmigrate", "rclone"])]
    bc.write_section(bc.RESULTS_MD, "dask scaling", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
