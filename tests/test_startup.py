"""Start-up: an S3 copy imports only what the command and its provider use (what it costs is measured by
benchmarks/startup.py, never timed here)."""

from __future__ import annotations

import json
import subprocess
import sys

# What an S3 copy without a terminal has no use for: the other providers' SDKs, Dask, the YAML editor of the
# deployment files, the progress bars.
NOT_ON_AN_S3_COPY = ("gcsfs", "adlfs", "azure.storage", "dask", "distributed", "ruamel", "tqdm")

# The real CLI in a fresh interpreter, which prints the names of the modules it ended with.
WRAPPER = ("import atexit, json, sys\n"
           "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n"
           "from lsmigrate.cli import main\n"
           "sys.argv[0] = 'lsmigrate'\n"
           "main()\n")


def _modules_after(*args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def _loaded(modules: set[str], package: str) -> list[str]:
    return sorted(name for name in modules if name == package or name.startswith(package + "."))


def test_an_s3_copy_imports_no_other_provider_nor_dask_yaml_or_progress_bars(s3_env, s3_bucket, tmp_path):
    source = tmp_path / "media"
    source.mkdir()
    (source / "a.txt").write_bytes(b"hi")
    modules = _modules_after("copy", str(source), f"{s3_bucket.url}/x", "--endpoint-url", s3_bucket.endpoint_url,
                             "-q", "--state", str(tmp_path / "journal.db"))
    assert s3_bucket.client().get_object(Bucket=s3_bucket.name, Key="x/a.txt")["Body"].read() == b"hi"
    assert "s3fs" in modules  # the copy went through the S3 store
    found = {package: _loaded(modules, package) for package in NOT_ON_AN_S3_COPY}
    assert not any(found.values()), {package: names for package, names in found.items() if names}
