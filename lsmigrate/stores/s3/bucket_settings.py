"""What doctor reads and sets on an S3 bucket besides its objects: CORS, default encryption, and the lifecycle
rule that aborts abandoned multipart uploads. `run(action, rel, method, **args)` is the store's request
call (S3Store._run: its retries and typed errors)."""

from __future__ import annotations

from collections.abc import Callable

from ...checks import PASS, WARN, Check
from ..errors import StoreError

Run = Callable[..., dict]


def cors_rules(run: Run, bucket: str) -> list:
    try:
        return run("GetBucketCors", None, "get_bucket_cors", Bucket=bucket).get("CORSRules", [])
    except StoreError as exc:
        if exc.code == "NoSuchCORSConfiguration":
            return []
        raise


def apply_cors(run: Run, bucket: str, rule: dict) -> None:
    run("PutBucketCors", None, "put_bucket_cors", Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})


def encryption_check(run: Run, bucket: str) -> Check:
    try:
        config = run("GetBucketEncryption", None, "get_bucket_encryption", Bucket=bucket)
        rules = config.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        kind = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] if rules else None
        return Check("default encryption at rest", PASS if kind else WARN, kind or "no default encryption")
    except StoreError as exc:
        if exc.code == "ServerSideEncryptionConfigurationNotFoundError":
            return Check("default encryption at rest", WARN, "no default encryption on the bucket",
                         "enable SSE-S3 or SSE-KMS default encryption on the bucket")
        return Check("default encryption at rest", WARN, f"cannot read it: {exc}")


def lifecycle_check(run: Run, bucket: str) -> Check:
    """lsmigrate aborts only the uploads its journal recorded; one created just before a kill -9, before
    its ID was journaled, is left to the bucket's lifecycle rule."""
    name = "clean-up of abandoned multipart uploads"
    fix = "add a lifecycle rule with AbortIncompleteMultipartUpload (for example after 7 days)"
    try:
        rules = run("GetBucketLifecycleConfiguration", None, "get_bucket_lifecycle_configuration",
                    Bucket=bucket).get("Rules", [])
    except StoreError as exc:
        if exc.code == "NoSuchLifecycleConfiguration":
            return Check(name, WARN, "no lifecycle rule on the bucket", fix)
        return Check(name, WARN, f"cannot read the lifecycle rules: {exc}", fix)
    if any(rule.get("AbortIncompleteMultipartUpload") and rule.get("Status") == "Enabled" for rule in rules):
        return Check(name, PASS, "a lifecycle rule aborts incomplete multipart uploads")
    return Check(name, WARN, "no lifecycle rule aborts incomplete multipart uploads", fix)
