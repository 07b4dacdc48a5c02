"""Where files go: a destination from a URL and flags, or from the deployment's own settings.

What differs between providers is in their records (lsmigrate.stores); this module reads them. No SDK is
imported here: a store's own `connect` module builds its client when the store is opened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import urlsplit

from .labelstudio import get_env
from .stores.registry import PROVIDERS, by_scheme, record_for
from .target import Target, TargetError

__all__ = ["check_bucket", "check_endpoint", "from_helm_persistence", "from_settings",
           "is_remote", "open_store", "parse_url", "public", "with_overrides"]


def check_bucket(kind: str, name: str, where: str) -> str:
    record = record_for(kind)
    if not record.bucket_pattern.match(name):
        shown = name.encode("unicode_escape").decode("ascii")[:80]
        raise TargetError(f"{shown!r} (from {where}) is not a valid {kind.upper()} {record.bucket_word} "
                          f"name ({record.bucket_rule})")
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
    record = by_scheme(parts.scheme)
    if record is None:
        examples = ", ".join(known.url_example for known in PROVIDERS.values())
        examples = " or ".join(examples.rsplit(", ", 1))
        raise TargetError(f"not a destination URL: {public(url)!r} (use {examples})")
    if not parts.netloc:
        raise TargetError(f"{url!r} has no bucket name (use {parts.scheme}://bucket/folder)")
    if "@" in parts.netloc:
        raise TargetError(f"{parts.scheme}:// URLs take no credentials; use the provider's variables")
    if "?" in url or "#" in url:  # urlsplit takes them for a query and a fragment, and the folder loses them
        raise TargetError(f"{url!r}: '?' and '#' cannot be part of a destination URL's folder")
    return Target(provider=record.name, bucket=check_bucket(record.name, parts.netloc, url),
                  folder=_clean_folder(parts.path, repr(url)))


def is_remote(location: str) -> bool:
    return by_scheme(urlsplit(location).scheme) is not None


def from_settings(settings: Mapping[str, str], *, source: str = "the environment") -> Target | None:
    """The destination exactly as Label Studio would read it from these variables; None when STORAGE_TYPE is unset."""

    def env(name: str) -> str | None:
        value = get_env(name, settings)
        return value if value not in (None, "") else None

    kind = (env("STORAGE_TYPE") or "").lower()
    if not kind:
        return None
    record = PROVIDERS.get(kind)
    if record is None:
        names = ", ".join(PROVIDERS)
        raise TargetError(f"STORAGE_TYPE={kind!r} in {source} is not a cloud storage type "
                          f"({' or '.join(names.rsplit(', ', 1))})")
    bucket = env(record.bucket_variable)
    if not bucket:
        raise TargetError(f"STORAGE_TYPE={kind} but {record.bucket_variable} is not set in {source}")
    check_bucket(kind, bucket, f"{record.bucket_variable} in {source}")
    folder = _clean_folder(env(record.folder_variable), f"{record.folder_variable} in {source}")
    return Target(provider=kind, bucket=bucket, folder=folder, **record.read_settings(env, settings))


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
    record = PROVIDERS.get(kind)
    notes: list[str] = []

    def secret(name: str) -> str | None:
        variable = record.helm.secrets[name]
        if section.get(f"{name}ExistingSecret"):
            value = get_env(variable, environ)
            if value is None:
                notes.append(f"{source} takes {name} from Kubernetes secret "
                             f"{section.get(f'{name}ExistingSecret')!s}; set {variable} in the environment to pass it")
            return value
        inline = section.get(name)
        return str(inline) if inline not in (None, "") else get_env(variable, environ)

    folder = _clean_folder(str(section.get("folder") or ""), f"global.persistence.config.{kind}.folder in {source}")
    if record is None:
        names = ", ".join([*PROVIDERS, "volume"])
        raise TargetError(f"{source}: global.persistence.type {kind!r} is not {' or '.join(names.rsplit(', ', 1))}")
    fields = record.read_helm(section, secret)
    bucket = section.get(record.helm.bucket)
    if bucket in (None, ""):
        raise TargetError(f"{source}: global.persistence.config.{kind}.{record.helm.bucket} is required")
    check_bucket(kind, str(bucket), f"global.persistence.config.{kind}.{record.helm.bucket} in {source}")
    return Target(provider=kind, bucket=str(bucket), folder=folder, notes=tuple(notes), **fields)


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
    record = record_for(target.provider)
    url = target.endpoint_url or (os.environ.get(record.endpoint_variable) if record.endpoint_variable else None)
    if not url:
        return
    given = url if "://" in url or not record.host_only_endpoint else f"http://{url}"  # STORAGE_EMULATOR_HOST=host:port
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
    """The Store for a target, opened by its provider's record (which builds the SDK client)."""
    check_endpoint(target)
    return record_for(target.provider).open_store(target, transfers=transfers, retries=retries)
