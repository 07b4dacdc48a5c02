"""Amazon S3 and S3-compatible servers (MinIO, Ceph, R2 ...)."""

import json
import re

from ..provider import Capabilities, CliWords, HelmKeys, Provider
from . import connect, settings
from .limits import LIMITS

# Label Studio's persistent storage guide: the CORS rule direct uploads need.
CORS_RULE = {
    "AllowedHeaders": ["*"],
    "AllowedMethods": ["GET", "PUT", "POST", "DELETE", "HEAD"],
    "AllowedOrigins": ["*"],
    "ExposeHeaders": ["x-amz-server-side-encryption", "x-amz-request-id", "x-amz-id-2"],
    "MaxAgeSeconds": 3600,
}

PROVIDER = Provider(
    name="s3", display="S3", schemes=("s3", "s3a"), bucket_word="bucket",
    bucket_pattern=re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$"),
    bucket_rule="3-255 letters, digits, dots, hyphens, underscores",
    bucket_variable="STORAGE_AWS_BUCKET_NAME", folder_variable="STORAGE_AWS_FOLDER",
    credential_hint="the access key and secret (STORAGE_AWS_ACCESS_KEY_ID / STORAGE_AWS_SECRET_ACCESS_KEY)",
    endpoint_hint="--endpoint-url (else AWS_ENDPOINT_URL, STORAGE_AWS_ENDPOINT_URL)",
    written_secrets=("STORAGE_AWS_ACCESS_KEY_ID", "STORAGE_AWS_SECRET_ACCESS_KEY"),
    helm=HelmKeys(bucket="bucket", secrets={"accessKey": "STORAGE_AWS_ACCESS_KEY_ID",
                                             "secretKey": "STORAGE_AWS_SECRET_ACCESS_KEY"}),
    cors_rule=CORS_RULE,
    cors_text=lambda rule: json.dumps([rule]),
    limits=LIMITS,
    capabilities=Capabilities(server_side_copy=True, event_loop_puts=True),
    words=CliWords(
        endpoint_help="An S3-compatible server, e.g. http://minio:9000 (default: STORAGE_AWS_ENDPOINT_URL, "
                      "AWS_ENDPOINT_URL, else AWS).",
        chunk_help="Part size for multipart uploads (at least 5 MiB, grown to stay within 10,000 parts).",
        threshold_help="Files larger than this go multipart.",
        busy="SlowDown, ",
        examples=("--data-dir /label-studio/data --env-file env.list",
                  "--data-dir ./mydata --to s3://my-bucket/ls-media --no-cutover",
                  "--data-dir ./mydata --values ls-values.yaml --to s3://my-bucket/media --yes")),
    read_settings=settings.read_settings, read_helm=settings.read_helm,
    write_settings=settings.write_settings, write_helm=settings.write_helm,
    open_store=connect.open_store, endpoint_of=settings.endpoint_of,
    public_endpoint="https://s3.amazonaws.com", offers_region=True,
    endpoint_variable="AWS_ENDPOINT_URL", shell_endpoint_variables=("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    policy=settings.policy,
)
