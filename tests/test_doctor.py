"""`lsmigrate doctor` against real servers: each failed check reported as such."""

from __future__ import annotations

import json

from s3util import all_objects, run


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
    assert status["CORS for browser uploads"] == "fail" and result.exit_code == 2
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
