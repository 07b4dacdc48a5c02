"""`lsmigrate doctor` against real servers: each failed check reported as such."""

from __future__ import annotations

import json
import socket

import pytest
from lsdata import make_data_dir
from s3util import all_objects, run

from lsmigrate.stores.azure.record import CORS_RULE as AZURE_CORS_RULE
from lsmigrate.stores.s3.record import CORS_RULE as S3_CORS_RULE


def _doctor(url, endpoint, *extra):
    result = run("doctor", "--to", url, "--endpoint-url", endpoint, "--json", *extra)
    return result, json.loads(result.stdout) if result.stdout.strip().startswith("{") else None


def _status(doc):
    return {check["name"]: check["status"] for check in doc["checks"]}


def test_healthy_bucket_without_cors(s3_env, s3_bucket):
    result, doc = _doctor(f"{s3_bucket.url}/media", s3_bucket.endpoint_url)
    status = _status(doc)
    assert status["credentials"] == "pass" and status["bucket exists"] == "pass"
    for step in ("list", "put", "get", "delete"):
        assert status[f"{step} under the folder"] == "pass"
    assert status["CORS for browser uploads"] == "warn" and result.exit_code == 0  # a warning: see test_cors_*
    assert doc["policy"]["Statement"][1]["Resource"] == f"arn:aws:s3:::{s3_bucket.name}/media/*"
    assert all_objects(s3_bucket.client(), s3_bucket.name) == {}, "the probe object is removed"

    result, doc = _doctor(f"{s3_bucket.url}/media", s3_bucket.endpoint_url, "--apply-cors")
    assert result.exit_code == 0 and _status(doc)["CORS for browser uploads"] == "pass"
    rules = s3_bucket.client().get_bucket_cors(Bucket=s3_bucket.name)["CORSRules"]
    assert rules[0]["AllowedMethods"] == ["GET", "PUT", "POST", "DELETE", "HEAD"]


def test_missing_bucket(s3_env, moto_server):
    result, doc = _doctor("s3://no-such-bucket-doctor/x", moto_server.endpoint_url)
    assert result.exit_code == 2
    assert doc["checks"][0]["name"] == "bucket exists" and doc["checks"][0]["status"] == "fail"
    assert "create the bucket" in doc["checks"][0]["fix"]


def test_wrong_key(s3_env, rclone_s3, monkeypatch):
    (rclone_s3.root_dir / "doctorbkt").mkdir(exist_ok=True)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    result, doc = _doctor("s3://doctorbkt/x", rclone_s3.endpoint_url)
    assert result.exit_code == 2
    assert doc["checks"][0] == {"name": "credentials", "status": "fail",
                                "detail": doc["checks"][0]["detail"], "fix": doc["checks"][0]["fix"]}
    assert "rejected" in doc["checks"][0]["detail"] and "not-the-secret" not in result.output


def _cors(doc):
    return next(check for check in doc["checks"] if check["name"] == "CORS for browser uploads")


def test_cors_missing_is_the_same_warning_in_doctor_and_local_to(s3_env, s3_bucket, tmp_path):
    """Label Studio's guide asks for CORS only for direct uploads and media its front end fetches: the copy does
    not need it. Both paths warn, with the guide's rule and --apply-cors, and neither blocks."""
    result, doc = _doctor(f"{s3_bucket.url}/media", s3_bucket.endpoint_url)
    assert result.exit_code == 0, result.output
    warning = _cors(doc)
    assert warning["status"] == "warn" and "--apply-cors" in warning["fix"]
    assert json.dumps([S3_CORS_RULE]) in warning["fix"], "the rule from Label Studio's guide, exactly"

    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)
    args = ("local-to-s3", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/media", "--endpoint-url",
            s3_bucket.endpoint_url, "--no-cutover")
    copied = run(*args, "--json")
    assert copied.exit_code == 0, copied.output
    assert _cors(json.loads(copied.stdout)["doctor"]) == warning
    text = run(*args)
    assert text.exit_code == 0, text.output
    shown = [f"warning: CORS for browser uploads: {warning['detail']}", f"    fix: {warning['fix']}"]
    lines = text.stderr.splitlines()
    copying = next(i for i, line in enumerate(lines) if line.startswith("Copying "))
    before, after = lines[:copying], lines[copying + 1:]
    assert before[before.index(shown[0]) + 1] == shown[1], "printed before the copy"
    assert after[after.index(shown[0]) + 1] == shown[1], "and again at the end, where a long run's output is read"
    assert "CORSRules" not in _bucket_cors(s3_bucket), "not applied unless asked"


def _bucket_cors(bucket):
    try:
        return bucket.client().get_bucket_cors(Bucket=bucket.name)
    except Exception as exc:  # NoSuchCORSConfiguration
        return {"error": str(exc)}


def test_cors_apply_from_local_to(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False)
    result = run("local-to-s3", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/media", "--endpoint-url",
                 s3_bucket.endpoint_url, "--no-cutover", "--apply-cors", "--json")
    assert result.exit_code == 0, result.output
    assert _cors(json.loads(result.stdout)["doctor"])["status"] == "pass"
    assert _bucket_cors(s3_bucket)["CORSRules"][0]["AllowedMethods"] == S3_CORS_RULE["AllowedMethods"]
    again, doc = _doctor(f"{s3_bucket.url}/media", s3_bucket.endpoint_url)
    assert again.exit_code == 0 and _cors(doc) == {"name": "CORS for browser uploads", "status": "pass",
                                                   "detail": "1 rule(s)", "fix": ""}


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("provider", ["s3", "gcs", "azure"])
def test_unreachable_endpoint_says_cannot_reach_it_not_a_permission(provider, s3_env, tmp_path, monkeypatch):
    port = _dead_port()
    endpoint = f"http://127.0.0.1:{port}"
    url = {"s3": "s3://bkt/media", "gcs": "gs://bkt/media", "azure": "az://bkt/media"}[provider]
    if provider == "s3":
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # the provider's own variable, no --endpoint-url
    elif provider == "gcs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"127.0.0.1:{port}")
    else:
        endpoint += "/devstoreaccount1"
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                           "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
                           f"BlobEndpoint={endpoint};")
    said = f"cannot reach {endpoint}: connection refused"

    result = run("doctor", "--to", url, "--retries", "0", "--json")
    assert result.exit_code == 2, result.output
    (check,) = json.loads(result.stdout)["checks"]
    assert (check["name"], check["status"], check["detail"]) == ("endpoint", "fail", said)
    assert "--endpoint-url" in check["fix"] and "permission" not in check["fix"]

    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=1, odd_names=False)
    copied = run(f"local-to-{provider}", "--data-dir", str(data.root), "--to", url, "--retries", "0", "--no-cutover")
    assert copied.exit_code == 2, copied.output
    last = copied.stderr.splitlines()[-1]
    assert last == f"lsmigrate: error: preflight failed: endpoint: {said}", copied.stderr
    assert "permission" not in copied.stderr and "policy" not in copied.stderr


def test_azure_rule_is_shown_as_the_guide_writes_it():
    from lsmigrate.doctor import cors_rule_text

    xml = cors_rule_text("azure")
    assert xml.startswith("<Cors><CorsRule><AllowedOrigins>*</AllowedOrigins>")
    assert f"<AllowedHeaders>{AZURE_CORS_RULE['allowed_headers']}</AllowedHeaders>" in xml
