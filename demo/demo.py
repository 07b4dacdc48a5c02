"""`make demo`: the main job on an embedded default, start to finish, on this machine alone.

A sample Label Studio data dir (uploads in projects, flat legacy names, avatars, exports, odd names,
two large files) is migrated to a local S3 server that the demo starts and stops itself; then the
deployment's env.list is switched to the bucket, and rolled back to show the way out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lsdata import make_data_dir  # noqa: E402
from servers import MotoServer  # noqa: E402

MiB = 1024 * 1024
WORK = ROOT / "demo-work"
ENV_LIST = """# Label Studio container settings (docker run --env-file env.list)
LABEL_STUDIO_HOST=https://labels.example.org
DJANGO_DB=default
# storage: still on the local volume
"""


def lsmigrate(*args: str, env: dict[str, str]) -> int:
    print(f"\n$ lsmigrate {' '.join(args)}", flush=True)
    return subprocess.run([sys.executable, "-m", "lsmigrate.cli", *args], env=env).returncode


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    data = make_data_dir(WORK / "label-studio-data", projects=4, uploads_per_project=60,
                         large_files=(40 * MiB, 24 * MiB))
    env_list = WORK / "env.list"
    env_list.write_text(ENV_LIST)
    print(f"Sample Label Studio data dir: {data.root} ({len(data.files)} media files, "
          f"{data.total_bytes() / MiB:.1f} MiB)")
    with MotoServer() as server:
        import boto3

        boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id="demo", aws_secret_access_key="demo",
                     region_name="us-east-1").create_bucket(Bucket="label-studio-media")
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
               "AWS_DEFAULT_REGION": "us-east-1", "XDG_STATE_HOME": str(WORK / "state")}
        common = ["--to", "s3://label-studio-media/ls", "--endpoint-url", server.endpoint_url]
        steps = [
            ["plan", "--data-dir", str(data.root), *common],
            ["local-to-s3", "--data-dir", str(data.root), "--env-file", str(env_list), *common,
             "--chunk-size", "8MiB", "--multipart-threshold", "16MiB", "--yes"],
            ["plan", "--data-dir", str(data.root), *common],
        ]
        for step in steps:
            if lsmigrate(*step, env=env) != 0:
                print("demo: a step failed", file=sys.stderr)
                return 1
        print(f"\n$ cat {env_list}\n{env_list.read_text()}")
        lsmigrate("cutover", "--rollback", "--env-file", str(env_list), env=env)
        print(f"\n$ cat {env_list}\n{env_list.read_text()}")
    print(f"Demo done; its files are in {WORK} (the local S3 server was stopped).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
