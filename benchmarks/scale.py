"""Scale: `lsmigrate copy` of N tiny files, then the same command again with nothing changed (the cutover
window's last pass). Prints wall, CPU, peak RSS and time per file for both.

Run: .venv/bin/python benchmarks/scale.py 100000   (rclone serve s3 with its objects in /dev/shm)
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import RcloneS3Server

N = int(sys.argv[1])
root = Path(__file__).resolve().parent / "work" / "scale"
shutil.rmtree(root, ignore_errors=True)
src = root / "src"
t = time.time()
for d in range(100):
    (src / f"p{d:03d}").mkdir(parents=True)
for i in range(N):
    with open(src / f"p{i % 100:03d}" / f"f{i:07d}.txt", "wb") as f:
        f.write(b"x" * (i % 64))
print(f"generated {N} files in {time.time()-t:.1f}s", flush=True)
srv_root = Path("/dev/shm/scale-srv")
shutil.rmtree(srv_root, ignore_errors=True)
(srv_root / "scale").mkdir(parents=True)
with RcloneS3Server(srv_root, "testing", "testing") as srv:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", XDG_STATE_HOME=str(root / "state"))
    for label in ("copy", "re-run (nothing changed)"):
        t = time.time()
        p = subprocess.Popen([str(Path(sys.executable).parent / "lsmigrate"), "copy", str(src), "s3://scale/x", "--endpoint-url", srv.endpoint_url, "-q", "--json"], env=env, stdout=subprocess.PIPE)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        doc = json.loads(out)
        wall = time.time() - t
        print(f"{label}: rc={status>>8} wall={wall:.1f}s cpu={ru.ru_utime+ru.ru_stime:.1f}s maxrss={ru.ru_maxrss/1024:.0f}MiB copied={doc['copied']} skipped={doc['skipped']} per-file={wall/N*1e6:.0f}us", flush=True)
shutil.rmtree(srv_root, ignore_errors=True)
