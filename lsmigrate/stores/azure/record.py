"""Azure Blob Storage (and Azurite)."""

import re

from ..provider import Capabilities, CliWords, HelmKeys, Provider
from . import connect, settings
from .limits import LIMITS

# Label Studio's persistent storage guide: the CORS rule direct uploads need (an account setting on Azure).
CORS_RULE = {"allowed_origins": "*", "allowed_methods": "GET,PUT,POST,DELETE,HEAD",
             "allowed_headers": "x-ms-blob-content-type", "exposed_headers": "x-ms-*", "max_age_in_seconds": 3600}


def cors_text(rule) -> str:
    """The rule as XML, as Label Studio's guide prints it for Azure."""
    fields = [("AllowedOrigins", "allowed_origins"), ("AllowedMethods", "allowed_methods"),
              ("AllowedHeaders", "allowed_headers"), ("ExposedHeaders", "exposed_headers"),
              ("MaxAgeInSeconds", "max_age_in_seconds")]
    return "<Cors><CorsRule>" + "".join(f"<{tag}>{rule[key]}</{tag}>" for tag, key in fields) + "</CorsRule></Cors>"


PROVIDER = Provider(
    name="azure", display="Azure", schemes=("az", "abfs", "azure"), bucket_word="container",
    bucket_pattern=re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"),
    bucket_rule="3-63 lowercase letters, digits, hyphens",
    bucket_variable="STORAGE_AZURE_CONTAINER_NAME", folder_variable="STORAGE_AZURE_FOLDER",
    credential_hint="the account name and key (STORAGE_AZURE_ACCOUNT_NAME / STORAGE_AZURE_ACCOUNT_KEY)",
    endpoint_hint="--endpoint-url, the account name or the connection string",
    written_secrets=("STORAGE_AZURE_ACCOUNT_KEY",),
    helm=HelmKeys(bucket="containerName", secrets={"storageAccountName": "STORAGE_AZURE_ACCOUNT_NAME",
                                                    "storageAccountKey": "STORAGE_AZURE_ACCOUNT_KEY"}),
    cors_rule=CORS_RULE, cors_text=cors_text,
    limits=LIMITS,
    capabilities=Capabilities(),
    words=CliWords(
        endpoint_help="The blob endpoint, e.g. Azurite's http://127.0.0.1:10000/devstoreaccount1 (default: the "
                      "connection string's, else https://<account>.blob.core.windows.net).",
        chunk_help="Block size for large blobs (at least 1 MiB, grown to stay within 50,000 blocks).",
        threshold_help="Files larger than this go as blocks, committed at the end.",
        busy="ServerBusy, ",
        examples=("--data-dir /label-studio/data --env-file env.list",
                  "--data-dir ./mydata --to az://my-container/ls-media --no-cutover",
                  "--data-dir ./mydata --values ls-values.yaml --to az://my-container/media --yes")),
    read_settings=settings.read_settings, read_helm=settings.read_helm,
    write_settings=settings.write_settings, write_helm=settings.write_helm,
    open_store=connect.open_store, endpoint_of=settings.endpoint_of,
    cors_on_account=True, settings_hold_endpoint=False,
)
