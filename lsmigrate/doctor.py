"""Preflight: can this target take Label Studio's files, and will Label Studio be able to serve them?"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from .endpoints import Target
from .uploads.base import Store, StoreError

PASS, FAIL, WARN = "pass", "fail", "warn"

# Label Studio's persistent storage guide, per provider: the CORS rule direct uploads need.
S3_CORS_RULE = {
    "AllowedHeaders": ["*"],
    "AllowedMethods": ["GET", "PUT", "POST", "DELETE", "HEAD"],
    "AllowedOrigins": ["*"],
    "ExposeHeaders": ["x-amz-server-side-encryption", "x-amz-request-id", "x-amz-id-2"],
    "MaxAgeSeconds": 3600,
}
GCS_CORS_RULE = {"origin": ["*"], "method": ["GET", "PUT", "POST", "DELETE", "HEAD"],
                 "responseHeader": ["Content-Type", "Access-Control-Allow-Origin"], "maxAgeSeconds": 3600}
AZURE_CORS_RULE = {"allowed_origins": "*", "allowed_methods": "GET,PUT,POST,DELETE,HEAD",
                   "allowed_headers": "x-ms-blob-content-type", "exposed_headers": "x-ms-*", "max_age_in_seconds": 3600}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass | fail | warn
    detail: str = ""
    fix: str = ""


def s3_policy(target: Target) -> dict:
    """Least privilege for lsmigrate and Label Studio on this bucket and folder."""
    prefix = f"{target.folder}/*" if target.folder else "*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
             "Resource": f"arn:aws:s3:::{target.bucket}",
             **({"Condition": {"StringLike": {"s3:prefix": [f"{target.folder}/*", target.folder]}}}
                if target.folder else {})},
            {"Effect": "Allow",
             "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts"],
             "Resource": f"arn:aws:s3:::{target.bucket}/{prefix}"},
        ],
    }


def run_checks(store: Store, target: Target, *, apply_cors: bool = False) -> list[Check]:
    checks: list[Check] = []
    try:
        store.check()
    except StoreError as exc:
        message = str(exc)
        name = "bucket exists" if "does not exist" in message else "credentials"  # (container, on Azure)
        checks.append(Check(name, FAIL, message, _fix_for(message, target)))
        return checks
    checks.append(Check("credentials", PASS, "accepted"))
    checks.append(Check("bucket exists", PASS, target.url))
    checks.extend(_probe(store))
    checks.append(_cors(store, target, apply_cors))
    extra = getattr(store, "doctor_checks", None)
    if extra is not None:
        checks.extend(extra())
    return checks


_CREDENTIAL_VARIABLES = {
    "s3": "the access key and secret (STORAGE_AWS_ACCESS_KEY_ID / STORAGE_AWS_SECRET_ACCESS_KEY)",
    "gcs": "the service account key file (GOOGLE_APPLICATION_CREDENTIALS)",
    "azure": "the account name and key (STORAGE_AZURE_ACCOUNT_NAME / STORAGE_AZURE_ACCOUNT_KEY)",
}


def _fix_for(message: str, target: Target) -> str:
    kind = "container" if target.provider == "azure" else "bucket"
    if "does not exist" in message:
        return f"create the {kind} {target.bucket} (or fix its name in the settings)"
    if "credentials" in message:
        return f"check {_CREDENTIAL_VARIABLES[target.provider]}"
    return "grant the permissions in the policy below" if target.provider == "s3" else "grant the missing permission"


def _probe(store: Store) -> list[Check]:
    """list, put, get and delete under the folder, with one probe object that is removed afterwards."""
    rel = f".lsmigrate-doctor-{uuid.uuid4().hex[:12]}"
    payload = b"lsmigrate doctor probe\n"
    checks: list[Check] = []
    steps = [
        ("list", lambda: next(iter(store.list()), None)),
        ("put", lambda: store.put(rel, payload, hashlib.md5(payload).digest())),
        ("get", lambda: _read_back(store, rel, payload)),
        ("delete", lambda: store.delete(rel)),
    ]
    for name, step in steps:
        try:
            step()
            checks.append(Check(f"{name} under the folder", PASS))
        except (StoreError, OSError, AssertionError) as exc:
            checks.append(Check(f"{name} under the folder", FAIL, str(exc), "grant the permissions in the policy below"))
            if name == "put":
                break
    return checks


def _read_back(store: Store, rel: str, payload: bytes) -> None:
    with store.open(rel) as handle:
        if handle.read() != payload:
            raise AssertionError("the probe object read back differs")


def _cors(store: Store, target: Target, apply_cors: bool) -> Check:
    getter = getattr(store, "cors_rules", None)
    if getter is None:
        return Check("CORS for browser uploads", WARN, "not checked for this provider")
    rule = {"s3": S3_CORS_RULE, "gcs": GCS_CORS_RULE, "azure": AZURE_CORS_RULE}[target.provider]
    try:
        rules = getter()
    except StoreError as exc:
        return Check("CORS for browser uploads", WARN, f"cannot read the CORS rules: {exc}")
    if rules:
        return Check("CORS for browser uploads", PASS, f"{len(rules)} rule(s)")
    if apply_cors:
        try:
            store.apply_cors(rule)
            return Check("CORS for browser uploads", PASS, "applied the rule from Label Studio's guide")
        except StoreError as exc:
            return Check("CORS for browser uploads", FAIL, f"could not apply: {exc}")
    return Check("CORS for browser uploads", FAIL, "no CORS rule: direct uploads from the browser will fail",
                 f"rerun with --apply-cors, or set this rule: {json.dumps(rule)}")
