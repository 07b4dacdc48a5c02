"""Start-up: an S3 copy imports only what the command and its provider use (what it costs is measured by
benchmarks/startup.py, never timed here)."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys

# What an S3 copy without a terminal has no use for: the other providers' SDKs, Dask, the YAML editor of the
# deployment files, the progress bars.
NOT_ON_AN_S3_COPY = ("gcsfs", "adlfs", "azure.storage", "dask", "distributed", "ruamel", "tqdm")

# The real CLI in a fresh interpreter, which prints the names of the modules it ended with.
WRAPPER = ("import atexit, json, sys\n"
           "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n"
           "from lsmigrate.cli.app import main\n"
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


def test_the_lean_paths_load_certificates_once_and_never_for_plain_http():
    from lsmigrate.stores.s3 import lean_put

    lean_put._verified_context.cache_clear()

    async def contexts():
        sessions = [lean_put.http_session(connections=2, verify=True, url=url)
                    for url in ("http://127.0.0.1:9000/b/", "https://s3.example.com/b/", "https://s3.example.com/c/")]
        found = [session.connector._ssl for session in sessions]
        for session in sessions:
            await session.close()
        return found

    plain, first, second = asyncio.run(contexts())
    assert plain is False
    assert isinstance(first, ssl.SSLContext) and first is second and first.verify_mode == ssl.CERT_REQUIRED
    assert lean_put._verified_context.cache_info().misses == 1
