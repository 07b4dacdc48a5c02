"""Preflight: can this target take Label Studio's files, and will Label Studio be able to serve them?

`lsmigrate doctor` and the first step of `local-to-*` run the very same checks (`preflight`): a failed check
stops a copy before it starts, a warning is printed and the copy goes on.
"""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from .endpoints import Target, open_store
from .jobs import PUBLIC_ENDPOINT, describe, endpoint_of
from .retry import CONNECT_TIMEOUT
from .uploads.base import Store, StoreError

PASS, FAIL, WARN = "pass", "fail", "warn"
CORS = "CORS for browser uploads"
ENDPOINT = "endpoint"

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
CORS_RULES = {"s3": S3_CORS_RULE, "gcs": GCS_CORS_RULE, "azure": AZURE_CORS_RULE}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass | fail | warn
    detail: str = ""
    fix: str = ""


def preflight(target: Target, *, retries: int, apply_cors: bool = False) -> dict:
    """Every check against the target, as one document (what `doctor` prints, and `local-to-*` acts on)."""
    store = open_store(target, transfers=4, retries=retries)
    try:
        checks = run_checks(store, target, apply_cors=apply_cors)
    finally:
        store.close()
    reached = checks[0].name != ENDPOINT  # no permission can fix an endpoint that does not answer
    return {"destination": describe(target), "checks": [asdict(check) for check in checks],
            "ok": all(check.status != FAIL for check in checks),
            "policy": s3_policy(target) if target.provider == "s3" and reached else None}


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
        checks.append(_refused(exc, target))
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
_ENDPOINT_SETTINGS = {
    "s3": "--endpoint-url (else AWS_ENDPOINT_URL, STORAGE_AWS_ENDPOINT_URL)",
    "gcs": "--endpoint-url (else STORAGE_EMULATOR_HOST, STORAGE_GCS_ENDPOINT)",
    "azure": "--endpoint-url, the account name or the connection string",
}


def _refused(exc: StoreError, target: Target) -> Check:
    """The check that failed first, named for what is wrong, with the fix for that (never a permission
    for an endpoint that does not answer)."""
    message = str(exc)
    kind = "container" if target.provider == "azure" else "bucket"
    if message.startswith("cannot reach"):  # every store's words for a connection that never answered
        endpoint = endpoint_of(target) or PUBLIC_ENDPOINT.get(target.provider)
        why = _unreachable(endpoint) if endpoint else message
        why = why or f"connections open, but requests fail ({message})"
        return Check(ENDPOINT, FAIL, f"cannot reach {endpoint or 'the endpoint'}: {why}",
                     f"check {_ENDPOINT_SETTINGS[target.provider]}, and DNS, proxies and firewalls on the way")
    if "does not exist" in message:
        return Check("bucket exists", FAIL, message, f"create the {kind} {target.bucket} (or fix its name in the settings)")
    if "credentials" in message:
        return Check("credentials", FAIL, message, f"check {_CREDENTIAL_VARIABLES[target.provider]}")
    if "access denied" in message:
        return Check("permissions", FAIL, message, "grant the permissions in the policy below"
                     if target.provider == "s3" else "grant the missing permission")
    return Check(f"{kind} reachable", FAIL, message)


def _unreachable(endpoint: str) -> str | None:
    """Why a connection to the endpoint cannot be opened, in the system's words; None if it can."""
    try:
        parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        if not parts.hostname:
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT).close()
    except socket.gaierror as exc:
        return f"{parts.hostname} does not resolve ({exc.strerror})"
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer to a connection within {CONNECT_TIMEOUT:g} s"
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or str(exc)
    return None


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


def cors_rule_text(provider: str) -> str:
    """The rule as Label Studio's guide prints it for this provider (S3 and GCS JSON, Azure XML)."""
    rule = CORS_RULES[provider]
    if provider != "azure":
        return json.dumps([rule])
    fields = [("AllowedOrigins", "allowed_origins"), ("AllowedMethods", "allowed_methods"),
              ("AllowedHeaders", "allowed_headers"), ("ExposedHeaders", "exposed_headers"),
              ("MaxAgeInSeconds", "max_age_in_seconds")]
    return "<Cors><CorsRule>" + "".join(f"<{tag}>{rule[key]}</{tag}>" for tag, key in fields) + "</CorsRule></Cors>"


def _cors(store: Store, target: Target, apply_cors: bool) -> Check:
    """A warning at worst, never a failure: Label Studio's guide asks for CORS only for direct uploads from
    the browser and media (audio, video, CSV) its front end fetches from the bucket. Neither the copy nor
    images and text served by URL need it, so a missing rule must not keep the files where they are."""
    getter = getattr(store, "cors_rules", None)
    if getter is None:
        return Check(CORS, WARN, "not checked for this provider")
    where = "the storage account (all its containers)" if target.provider == "azure" else f"bucket {target.bucket}"
    set_it = f"set the rule from Label Studio's guide on {where}: {cors_rule_text(target.provider)}"
    try:
        rules = getter()
    except StoreError as exc:
        return Check(CORS, WARN, f"cannot read the CORS rules: {exc}", set_it)
    if rules:
        return Check(CORS, PASS, f"{len(rules)} rule(s)")
    if apply_cors:
        try:
            store.apply_cors(CORS_RULES[target.provider])
            return Check(CORS, PASS, "applied the rule from Label Studio's guide")
        except StoreError as exc:
            return Check(CORS, WARN, f"no CORS rule, and it could not be applied: {exc}", set_it)
    return Check(CORS, WARN, "no CORS rule: browsers will refuse Label Studio's direct uploads and the audio, "
                 "video and CSV files it fetches from the bucket (the copy does not need it)",
                 f"rerun with --apply-cors, or {set_it}")


def render(doc: dict) -> str:
    """The checklist, a fix under each check that is not passed, then the least-privilege policy."""
    marks = {PASS: "[ok]  ", FAIL: "[FAIL]", WARN: "[warn]"}
    lines = [f"Destination: {doc['destination']}"]
    for check in doc["checks"]:
        detail = f": {check['detail']}" if check["detail"] else ""
        lines.append(f"{marks[check['status']]} {check['name']}{detail}")
        if check["fix"] and check["status"] != PASS:
            lines.append(f"        fix: {check['fix']}")
    if doc["policy"]:
        lines.append("Least-privilege policy for this bucket and folder:")
        lines.append(json.dumps(doc["policy"], indent=2))
    return "\n".join(lines)


def warning_lines(doc: dict) -> list[str]:
    """The warnings, worded as `doctor` words them, for commands that go on despite them."""
    lines = []
    for check in doc["checks"]:
        if check["status"] == WARN:
            lines.append(f"warning: {check['name']}: {check['detail']}")
            if check["fix"]:
                lines.append(f"    fix: {check['fix']}")
    return lines
