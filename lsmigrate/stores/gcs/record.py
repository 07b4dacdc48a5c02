"""Google Cloud Storage (and emulators such as fake-gcs-server)."""

import json
import re

from ..provider import Capabilities, CliWords, HelmKeys, Provider
from . import connect, settings
from .limits import LIMITS

# Label Studio's persistent storage guide: the CORS rule direct uploads need.
CORS_RULE = {"origin": ["*"], "method": ["GET", "PUT", "POST", "DELETE", "HEAD"],
            "responseHeader": ["Content-Type", "Access-Control-Allow-Origin"], "maxAgeSeconds": 3600}

PROVIDER = Provider(
    name="gcs", display="GCS", schemes=("gs", "gcs"), bucket_word="bucket",
    bucket_pattern=re.compile(r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$"),
    bucket_rule="3-222 lowercase letters, digits, dots, hyphens",
    bucket_variable="STORAGE_GCS_BUCKET_NAME", folder_variable="STORAGE_GCS_FOLDER",
    credential_hint="the service account key file (GOOGLE_APPLICATION_CREDENTIALS)",
    endpoint_hint="--endpoint-url (else STORAGE_EMULATOR_HOST, STORAGE_GCS_ENDPOINT)",
    written_secrets=(),
    helm=HelmKeys(bucket="bucket", secrets={"applicationCredentialsJSON": "GOOGLE_APPLICATION_CREDENTIALS"}),
    cors_rule=CORS_RULE,
    cors_text=lambda rule: json.dumps([rule]),
    limits=LIMITS,
    capabilities=Capabilities(),
    words=CliWords(
        endpoint_help="A GCS endpoint, e.g. an emulator's http://localhost:4443 (default: STORAGE_EMULATOR_HOST, "
                      "else Google's).",
        chunk_help="Chunk size of resumable uploads (at least 8 MiB, rounded up to a multiple of 256 KiB).",
        threshold_help="Files larger than this go in a resumable session, chunk by chunk.",
        busy="",
        examples=("--data-dir /label-studio/data --env-file env.list",
                  "--data-dir ./mydata --to gs://my-bucket/ls-media --no-cutover",
                  "--data-dir ./mydata --compose docker-compose.yml --to gs://my-bucket/media --apply-cors --yes")),
    read_settings=settings.read_settings, read_helm=settings.read_helm,
    write_settings=settings.write_settings, write_helm=settings.write_helm,
    open_store=connect.open_store, endpoint_of=settings.endpoint_of,
    public_endpoint="https://storage.googleapis.com", host_only_endpoint=True,
)
