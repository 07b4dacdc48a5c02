"""Where files go: a destination from a URL and flags, or from the deployment's own settings.

This is the only module that builds fsspec filesystems (and so the only one that imports s3fs, gcsfs
or adlfs); the stores in `uploads/` get a ready filesystem from here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from . import __version__
from .labelstudio import get_env

SCHEMES = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "azure": "azure"}
URL_SCHEME = {"s3": "s3", "gcs": "gs", "azure": "az"}
# Where each provider's bucket (container) is named: Label Studio's variable, and the Helm chart's key.
BUCKET_VARIABLE = {"s3": "STORAGE_AWS_BUCKET_NAME", "gcs": "STORAGE_GCS_BUCKET_NAME",
                   "azure": "STORAGE_AZURE_CONTAINER_NAME"}
HELM_BUCKET_KEY = {"s3": "bucket", "gcs": "bucket", "azure": "containerName"}


class TargetError(Exception):
    """The destination is not fully specified or not understood (one line, says which option or variable)."""


@dataclass(frozen=True)
class Target:
    """A bucket (container) and folder at one provider, with what is needed to reach it."""

    provider: str  # s3 | gcs | azure
    bucket: str
    folder: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    # Credentials and provider options are kept out of repr() so they never reach a message or a log.
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    object_parameters: Mapping[str, object] = field(default_factory=dict, repr=False)
    project: str | None = None
    account_name: str | None = None
    account_key: str | None = field(default=None, repr=False)
    connection_string: str | None = field(default=None, repr=False)
    credentials_file: str | None = None  # GCS service-account JSON (a path, not a secret itself)
    use_ssl: bool = True
    verify_ssl: bool | str = True
    notes: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        path = f"{self.bucket}/{self.folder}" if self.folder else self.bucket
        return f"{URL_SCHEME[self.provider]}://{path}"

    def key(self, rel: str) -> str:
        return f"{self.folder}/{rel}" if self.folder else rel


# What each provider accepts as a bucket (container) name; anything else is refused before any request.
_BUCKET_RULES = {
    "s3": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$"), "3-255 letters, digits, dots, hyphens, underscores"),
    "gcs": (re.compile(r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$"), "3-222 lowercase letters, digits, dots, hyphens"),
    "azure": (re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"), "3-63 lowercase letters, digits, hyphens"),
}
_BUCKET_WORD = {"s3": "bucket", "gcs": "bucket", "azure": "container"}


def check_bucket(provider: str, name: str, where: str) -> str:
    pattern, rule = _BUCKET_RULES[provider]
    if not pattern.match(name):
        shown = name.encode("unicode_escape").decode("ascii")[:80]
        raise TargetError(f"{shown!r} (from {where}) is not a valid {provider.upper()} {_BUCKET_WORD[provider]} "
                          f"name ({rule})")
    return name


def _clean_folder(folder: str | None, where: str = "the folder") -> str:
    """The folder without its outer slashes. `.` and `..` segments are refused (a URL client resolves them:
    `b/../etc` would write to `/etc`), and so are empty ones (`a//b`: a key no one means)."""
    cleaned = (folder or "").strip("/")
    if cleaned and any(segment in ("", ".", "..") for segment in cleaned.split("/")):
        raise TargetError(f"{where}: the folder {cleaned!r} has an empty, '.' or '..' segment; name it plainly, "
                          "e.g. ls-media or media/prod")
    return cleaned


def public(url: str | None) -> str | None:
    """A URL as it may be shown or stored: any user:password@ part masked."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=f"***@{host}").geturl()


def parse_url(url: str) -> Target:
    """`s3://bucket/folder`, `gs://bucket/folder`, `az://container/folder` -> Target (no credentials yet)."""
    parts = urlsplit(url)
    provider = SCHEMES.get(parts.scheme.lower())
    if provider is None:
        raise TargetError(f"not a destination URL: {public(url)!r} (use s3://bucket/folder, gs://bucket/folder or "
                          "az://container/folder)")
    if not parts.netloc:
        raise TargetError(f"{url!r} has no bucket name (use {parts.scheme}://bucket/folder)")
    if "@" in parts.netloc:
        raise TargetError(f"{parts.scheme}:// URLs take no credentials; use the provider's variables")
    if "?" in url or "#" in url:  # urlsplit takes them for a query and a fragment, and the folder loses them
        raise TargetError(f"{url!r}: '?' and '#' cannot be part of a destination URL's folder")
    return Target(provider=provider, bucket=check_bucket(provider, parts.netloc, url),
                  folder=_clean_folder(parts.path, repr(url)))


def is_remote(location: str) -> bool:
    return urlsplit(location).scheme.lower() in SCHEMES


def _truthy(value: str | None, default: bool = True) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def _object_parameters(raw: str | None) -> dict[str, object]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TargetError(f"STORAGE_AWS_OBJECT_PARAMETERS is not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise TargetError("STORAGE_AWS_OBJECT_PARAMETERS must be a JSON object, e.g. {\"CacheControl\": \"max-age=86400\"}")
    return value


def from_settings(settings: Mapping[str, str], *, source: str = "the environment") -> Target | None:
    """The destination exactly as Label Studio would read it from these variables; None when STORAGE_TYPE is unset."""

    def env(name: str) -> str | None:
        value = get_env(name, settings)
        return value if value not in (None, "") else None

    kind = (env("STORAGE_TYPE") or "").lower()
    if not kind:
        return None
    if kind == "s3":
        bucket = env("STORAGE_AWS_BUCKET_NAME")
        if not bucket:
            raise TargetError(f"STORAGE_TYPE=s3 but STORAGE_AWS_BUCKET_NAME is not set in {source}")
        check_bucket("s3", bucket, f"STORAGE_AWS_BUCKET_NAME in {source}")
        return Target(
            provider="s3", bucket=bucket, folder=_clean_folder(env("STORAGE_AWS_FOLDER"), f"STORAGE_AWS_FOLDER in {source}"),
            endpoint_url=env("STORAGE_AWS_ENDPOINT_URL"), region=env("STORAGE_AWS_REGION_NAME"),
            access_key=env("STORAGE_AWS_ACCESS_KEY_ID"), secret_key=env("STORAGE_AWS_SECRET_ACCESS_KEY"),
            object_parameters=_object_parameters(env("STORAGE_AWS_OBJECT_PARAMETERS")),
            use_ssl=_truthy(env("STORAGE_AWS_S3_USE_SSL")), verify_ssl=_truthy(env("STORAGE_AWS_S3_VERIFY")),
        )
    if kind == "gcs":
        bucket = env("STORAGE_GCS_BUCKET_NAME")
        if not bucket:
            raise TargetError(f"STORAGE_TYPE=gcs but STORAGE_GCS_BUCKET_NAME is not set in {source}")
        check_bucket("gcs", bucket, f"STORAGE_GCS_BUCKET_NAME in {source}")
        return Target(provider="gcs", bucket=bucket, folder=_clean_folder(env("STORAGE_GCS_FOLDER"), f"STORAGE_GCS_FOLDER in {source}"),
                      endpoint_url=env("STORAGE_GCS_ENDPOINT") or settings.get("STORAGE_EMULATOR_HOST") or None,
                      project=env("STORAGE_GCS_PROJECT_ID"),
                      credentials_file=settings.get("GOOGLE_APPLICATION_CREDENTIALS") or None)
    if kind == "azure":
        container = env("STORAGE_AZURE_CONTAINER_NAME")
        if not container:
            raise TargetError(f"STORAGE_TYPE=azure but STORAGE_AZURE_CONTAINER_NAME is not set in {source}")
        check_bucket("azure", container, f"STORAGE_AZURE_CONTAINER_NAME in {source}")
        return Target(provider="azure", bucket=container, folder=_clean_folder(env("STORAGE_AZURE_FOLDER"), f"STORAGE_AZURE_FOLDER in {source}"),
                      account_name=env("STORAGE_AZURE_ACCOUNT_NAME") or settings.get("AZURE_STORAGE_ACCOUNT_NAME"),
                      account_key=env("STORAGE_AZURE_ACCOUNT_KEY") or settings.get("AZURE_STORAGE_ACCOUNT_KEY"),
                      connection_string=settings.get("AZURE_STORAGE_CONNECTION_STRING") or None)
    raise TargetError(f"STORAGE_TYPE={kind!r} in {source} is not a cloud storage type (s3, gcs or azure)")


_HELM_SECRET_VARIABLE = {
    ("s3", "accessKey"): "STORAGE_AWS_ACCESS_KEY_ID",
    ("s3", "secretKey"): "STORAGE_AWS_SECRET_ACCESS_KEY",
    ("gcs", "applicationCredentialsJSON"): "GOOGLE_APPLICATION_CREDENTIALS",
    ("azure", "storageAccountName"): "STORAGE_AZURE_ACCOUNT_NAME",
    ("azure", "storageAccountKey"): "STORAGE_AZURE_ACCOUNT_KEY",
}


def from_helm_persistence(persistence: Mapping[str, object], environ: Mapping[str, str], *,
                          source: str = "values file", provider: str | None = None) -> Target | None:
    """`global.persistence` of Label Studio's chart -> Target. Secrets held in Kubernetes secrets come from
    the environment instead (the note says which variable)."""
    kind = str(provider or persistence.get("type") or "").lower()
    if kind in ("", "volume"):
        return None
    config = persistence.get("config") or {}
    section = config.get(kind) if isinstance(config, Mapping) else None
    if not isinstance(section, Mapping):
        raise TargetError(f"{source}: global.persistence.type is {kind} but global.persistence.config.{kind} is missing")
    notes: list[str] = []

    def secret(name: str) -> str | None:
        variable = _HELM_SECRET_VARIABLE[(kind, name)]
        if section.get(f"{name}ExistingSecret"):
            value = get_env(variable, environ)
            if value is None:
                notes.append(f"{source} takes {name} from Kubernetes secret "
                             f"{section.get(f'{name}ExistingSecret')!s}; set {variable} in the environment to pass it")
            return value
        inline = section.get(name)
        return str(inline) if inline not in (None, "") else get_env(variable, environ)

    def need(name: str) -> str:
        value = section.get(name)
        if value in (None, ""):
            raise TargetError(f"{source}: global.persistence.config.{kind}.{name} is required")
        if name in ("bucket", "containerName"):
            check_bucket(kind, str(value), f"global.persistence.config.{kind}.{name} in {source}")
        return str(value)

    folder = _clean_folder(str(section.get("folder") or ""), f"global.persistence.config.{kind}.folder in {source}")
    if kind == "s3":
        params = section.get("objectParameters") or {}
        if isinstance(params, str):
            params = _object_parameters(params)
        target = Target(provider="s3", bucket=need("bucket"), folder=folder, region=str(section.get("region") or "") or None,
                        endpoint_url=str(section.get("endpointUrl") or "") or None,
                        access_key=secret("accessKey"), secret_key=secret("secretKey"), object_parameters=dict(params))
    elif kind == "gcs":
        target = Target(provider="gcs", bucket=need("bucket"), folder=folder, project=str(section.get("projectID") or "") or None)
        secret("applicationCredentialsJSON")
    elif kind == "azure":
        target = Target(provider="azure", bucket=need("containerName"), folder=folder,
                        account_name=secret("storageAccountName"), account_key=secret("storageAccountKey"))
    else:
        raise TargetError(f"{source}: global.persistence.type {kind!r} is not s3, gcs, azure or volume")
    return replace(target, notes=tuple(notes))


def with_overrides(target: Target, *, url: str | None = None, endpoint_url: str | None = None,
                   region: str | None = None) -> Target:
    """Flags win over what the deployment says: `--to` sets bucket and folder, the rest their field."""
    if url:
        given = parse_url(url)
        if given.provider != target.provider:
            raise TargetError(f"--to {url} is {given.provider} but the deployment is configured for {target.provider}")
        target = replace(target, bucket=given.bucket, folder=given.folder)
    if endpoint_url:
        target = replace(target, endpoint_url=endpoint_url)
    if region:
        target = replace(target, region=region)
    return target


def check_endpoint(target: Target) -> None:
    """A malformed endpoint is a usage error here, before a library turns it into a ValueError of its own."""
    url = target.endpoint_url or (os.environ.get("AWS_ENDPOINT_URL") if target.provider == "s3" else None)
    if not url:
        return
    given = url if "://" in url or target.provider != "gcs" else f"http://{url}"  # STORAGE_EMULATOR_HOST=host:port
    try:
        parts = urlsplit(given)
        good = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        shown = public(url)
    except ValueError:  # an unclosed [IPv6] bracket, a port that is no number or out of range
        good, shown = False, re.sub(r"//[^/]*@", "//***@", url)
    if not good:
        raise TargetError(f"the endpoint {shown!r} is not an http(s) URL like http://127.0.0.1:9000 (from "
                          "--endpoint-url or the provider's endpoint variable)")


def open_store(target: Target, *, transfers: int = 16, retries: int = 5):
    """The Store for a target: a ready fsspec filesystem wrapped in the provider's upload module."""
    check_endpoint(target)
    if target.provider == "s3":
        from .uploads.s3 import S3Store

        return S3Store(target, _s3_filesystem(target, transfers=transfers, retries=retries),
                       connections=max(10, transfers * 2), retries=retries)
    if target.provider == "gcs":
        from .uploads.gcs import GCSStore

        return GCSStore(target, _gcs_filesystem(target), retries=retries)
    if target.provider == "azure":
        from .uploads.azure import AzureStore

        return AzureStore(target, _azure_filesystem(target), retries=retries)
    raise TargetError(f"{target.url}: unknown provider {target.provider}")


def _fast_timestamp(value):
    from datetime import datetime

    from botocore.utils import parse_timestamp

    if isinstance(value, str) and "T" in value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return parse_timestamp(value)  # HTTP dates (HEAD), epoch numbers: botocore's own parser


def _gcs_filesystem(target: Target):
    endpoint = target.endpoint_url
    if endpoint:
        # gcsfs probes the bucket type over gRPC+TLS, which an emulator never answers (60 s per call);
        # it must be switched off before gcsfs is first imported.
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
    import gcsfs

    token = target.credentials_file or ("anon" if endpoint and not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                                        else None)
    if token and token != "anon" and not os.path.isfile(token):
        if token.lstrip().startswith("{"):  # the key itself, which must never be printed
            raise TargetError("GOOGLE_APPLICATION_CREDENTIALS holds JSON, not a path: set it to the path of the "
                              "service-account JSON file")
        raise TargetError(f"GOOGLE_APPLICATION_CREDENTIALS points at {token}, which is not a readable file")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "project not set": lsmigrate never lists or creates buckets
        try:
            return gcsfs.GCSFileSystem(project=target.project, token=token, endpoint_url=endpoint,
                                       skip_instance_cache=True)
        except Exception as exc:  # google-auth's errors for an unusable credentials file
            raise TargetError(f"the GCS credentials cannot be used ({exc.__class__.__name__}); check "
                              "GOOGLE_APPLICATION_CREDENTIALS points at a service-account JSON file") from None


def azure_connection_string(target: Target) -> str | None:
    """The account's connection string: given whole, or built from name and key (and a blob endpoint)."""
    if target.connection_string and not target.account_key:
        return target.connection_string
    if target.account_name and target.account_key:
        parts = [f"AccountName={target.account_name}", f"AccountKey={target.account_key}"]
        # Label Studio's settings name the account and key, never its endpoint: a connection string in the
        # environment for the same account says where that account is reached (Azurite, a sovereign cloud).
        given = _connection_fields(target.connection_string)
        endpoint = target.endpoint_url or (given.get("BlobEndpoint") if given.get("AccountName") == target.account_name
                                           else None)
        if endpoint:
            scheme = endpoint.split("://", 1)[0]
            parts = [f"DefaultEndpointsProtocol={scheme}", *parts, f"BlobEndpoint={endpoint}"]
        else:
            parts = ["DefaultEndpointsProtocol=https", *parts, "EndpointSuffix=core.windows.net"]
        return ";".join(parts) + ";"
    return target.connection_string


def _connection_fields(connection_string: str | None) -> dict[str, str]:
    """`Name=value;...` of an Azure connection string (a value may itself hold '=')."""
    fields = (part.partition("=") for part in (connection_string or "").split(";") if "=" in part)
    return {name.strip(): value.strip() for name, _, value in fields}


def _azure_filesystem(target: Target):
    import adlfs

    connection = azure_connection_string(target)
    if connection:
        try:
            return adlfs.AzureBlobFileSystem(connection_string=connection, skip_instance_cache=True)
        except ValueError:
            raise TargetError("the Azure connection string is malformed (AZURE_STORAGE_CONNECTION_STRING, or "
                              "STORAGE_AZURE_ACCOUNT_NAME/KEY): expected AccountName=...;AccountKey=...;...") from None
    if target.account_name:  # no key: Azure AD (DefaultAzureCredential), as on a managed identity
        return adlfs.AzureBlobFileSystem(account_name=target.account_name, anon=False, skip_instance_cache=True)
    raise TargetError("no Azure credentials: set STORAGE_AZURE_ACCOUNT_NAME and STORAGE_AZURE_ACCOUNT_KEY, "
                      "or AZURE_STORAGE_CONNECTION_STRING")


def _s3_filesystem(target: Target, *, transfers: int, retries: int):
    import s3fs

    from .retry import RetryPolicy

    client_kwargs: dict[str, object] = {}
    if target.region:
        client_kwargs["region_name"] = target.region
    if not target.verify_ssl:
        client_kwargs["verify"] = False
    policy = RetryPolicy.from_retries(retries)
    config_kwargs = {
        # botocore's standard retries carry the policy's attempts (`max_attempts` would mean retries, one more
        # try). Its backoff stays its own: full jitter under the same 1, 2, 4 ... 20 s ceilings as
        # lsmigrate.retry, and it does not read Retry-After: replacing its retry handler would mean hooking
        # botocore internals.
        "retries": {"total_max_attempts": policy.attempts, "mode": "standard"},
        "connect_timeout": policy.connect_timeout,
        # We send Content-MD5 ourselves; the newer default CRC headers cost CPU and some S3-compatible servers reject them.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "max_pool_connections": max(10, transfers * 2),
        # No SigV4 SHA-256 of every body (botocore would compute it over plain http): each upload carries a
        # Content-MD5 that the server checks and that the signature covers, so the hash would only cost CPU.
        "s3": {"payload_signing_enabled": False},
        # A fixed User-Agent: botocore otherwise rebuilds its long one (twice) for every request, which
        # was the largest single CPU cost per small file (about 0.7 ms of 1.8 ms).
        "user_agent": f"lsmigrate/{__version__}",
    }
    key = target.access_key
    secret = target.secret_key
    import aiobotocore.session

    session = aiobotocore.session.AioSession()
    # botocore parses every LastModified of a listing with dateutil: 0.3 ms a key, most of a nothing-changed
    # re-run's time. S3 writes ISO 8601, which the standard library reads directly.
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_fast_timestamp)
    fs = s3fs.S3FileSystem(
        key=key, secret=secret, endpoint_url=target.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        use_ssl=target.use_ssl, client_kwargs=client_kwargs, config_kwargs=config_kwargs,
        skip_instance_cache=True, session=session,
    )
    fs.retries = 1  # botocore retries (above); s3fs's own loop on top would multiply them
    return fs
