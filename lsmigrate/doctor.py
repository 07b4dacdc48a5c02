"""Preflight: can this target take Label Studio's files, and will Label Studio be able to serve them?

`lsmigrate doctor` and the first step of `local-to-*` run the very same checks (`preflight`): a failed check
stops a copy before it starts, a warning is printed and the copy goes on.
"""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from dataclasses import asdict
from urllib.parse import urlsplit

from .checks import FAIL, PASS, WARN, Check
from .endpoints import open_store
from .jobs import describe, endpoint_of
from .retry import CONNECT_TIMEOUT
from .stores.base import Store
from .stores.errors import AccessDenied, BucketNotFound, CredentialsRejected, NetworkError, StoreError
from .stores.registry import record_for
from .target import Target

__all__ = ["FAIL", "PASS", "WARN", "Check", "cors_rule_text", "preflight", "render", "run_checks", "warning_lines"]

CORS = "CORS for browser uploads"
ENDPOINT = "endpoint"


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
            "policy": _policy(target) if reached else None}


def _policy(target: Target) -> dict | None:
    """Least privilege for lsmigrate and Label Studio on this bucket and folder, where the provider has one."""
    write = record_for(target.provider).policy
    return write(target) if write else None


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
    checks.extend(store.doctor_checks())
    return checks


def _refused(exc: StoreError, target: Target) -> Check:
    """The check that failed first, named for what is wrong, with the fix for that (never a permission
    for an endpoint that does not answer)."""
    message = str(exc)
    record = record_for(target.provider)
    kind = record.bucket_word
    if isinstance(exc, NetworkError):
        endpoint = endpoint_of(target) or record.public_endpoint
        why = _unreachable(endpoint) if endpoint else message
        why = why or f"connections open, but requests fail ({message})"
        return Check(ENDPOINT, FAIL, f"cannot reach {endpoint or 'the endpoint'}: {why}",
                     f"check {record.endpoint_hint}, and DNS, proxies and firewalls on the way")
    if isinstance(exc, BucketNotFound):
        return Check("bucket exists", FAIL, message, f"create the {kind} {target.bucket} (or fix its name in the settings)")
    if isinstance(exc, CredentialsRejected) or (isinstance(exc, AccessDenied) and exc.lacking == "credentials"):
        return Check("credentials", FAIL, message, f"check {record.credential_hint}")
    if isinstance(exc, AccessDenied):
        return Check("permissions", FAIL, message, "grant the permissions in the policy below"
                     if record.policy else "grant the missing permission")
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


def cors_rule_text(provider_name: str) -> str:
    """The rule as Label Studio's guide prints it for this provider (S3 and GCS JSON, Azure XML)."""
    record = record_for(provider_name)
    return record.cors_text(record.cors_rule)


def _cors(store: Store, target: Target, apply_cors: bool) -> Check:
    """A warning at worst, never a failure: Label Studio's guide asks for CORS only for direct uploads from
    the browser and media (audio, video, CSV) its front end fetches from the bucket. Neither the copy nor
    images and text served by URL need it, so a missing rule must not keep the files where they are."""
    record = record_for(target.provider)
    where = (f"the storage account (all its {record.bucket_word}s)" if record.cors_on_account
             else f"{record.bucket_word} {target.bucket}")
    set_it = f"set the rule from Label Studio's guide on {where}: {cors_rule_text(target.provider)}"
    try:
        rules = store.cors_rules()
    except StoreError as exc:
        return Check(CORS, WARN, f"cannot read the CORS rules: {exc}", set_it)
    if rules is None:
        return Check(CORS, WARN, "not checked for this provider")
    if rules:
        return Check(CORS, PASS, f"{len(rules)} rule(s)")
    if apply_cors:
        try:
            store.apply_cors(dict(record.cors_rule))
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
