"""Wiring shared by the commands: which tree is the source, which target, which journal, and the plan stream."""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import deployment, endpoints
from .endpoints import Target, TargetError
from .journal import Journal, default_path
from .labelstudio import DataDir, NotADataDir, find_data_dir, is_data_dir
from .plan import Action, plan
from .scan import LocalFile, Problem, scan_local
from .uploads.base import Store


@dataclass(frozen=True)
class Source:
    """The tree that is copied: a Label Studio data dir's `media/`, or a plain folder as it is."""

    root: Path
    data_dir: DataDir | None = None
    include_legacy_export: bool = False


LEGACY_EXPORT_PREFIX = "legacy-export/"


def local_files(source: Source) -> Iterator[LocalFile | Problem]:
    """The source tree, plus the legacy `export/` folder under `legacy-export/` when asked for."""
    media = scan_local(source.root)
    legacy = source.data_dir.legacy_export if source.data_dir else None
    if not (source.include_legacy_export and legacy and legacy.is_dir()):
        return media
    return heapq.merge(media, scan_local(legacy, LEGACY_EXPORT_PREFIX), key=lambda item: item.rel)


def source_from_path(path: str) -> Source:
    given = Path(path).expanduser()
    if not given.exists():
        raise NotADataDir(f"source {given} does not exist")
    if not given.is_dir():
        raise NotADataDir(f"source {given} is not a directory")
    if is_data_dir(given):
        data_dir = DataDir(given.resolve())
        return Source(data_dir.media, data_dir)
    return Source(given.resolve())


def source_from_data_dir(path: str | None, environ: Mapping[str, str] | None = None) -> Source:
    data_dir = find_data_dir(path, environ)
    data_dir = DataDir(data_dir.base.resolve())
    return Source(data_dir.media, data_dir)


def deployment_settings(*, env_file: str | None = None, compose: str | None = None,
                        compose_service: str | None = None) -> dict[str, str]:
    """The process environment overlaid with the deployment file's variables (the file wins)."""
    settings = dict(os.environ)
    if env_file:
        settings.update(deployment.read_env_file(env_file))
    if compose:
        settings.update(deployment.read_compose_environment(compose, compose_service))
    return settings


def resolve_target(*, url: str | None = None, env_file: str | None = None, compose: str | None = None,
                   compose_service: str | None = None, values: str | None = None,
                   endpoint_url: str | None = None, region: str | None = None,
                   provider: str | None = None) -> Target:
    """Flags > deployment file > process environment, the way Label Studio itself reads its settings."""
    settings = deployment_settings(env_file=env_file, compose=compose, compose_service=compose_service)
    source = env_file or compose or "the environment"
    target: Target | None = None
    if values:
        persistence = deployment.read_helm_values(values)
        kind = provider or (endpoints.parse_url(url).provider if url else None)
        config = persistence.get("config") if isinstance(persistence.get("config"), Mapping) else {}
        if str(persistence.get("type") or "volume") == "volume" and kind and isinstance(config.get(kind), Mapping):
            # Before the switch: the chart still says `volume`, but its config.<provider> may already hold
            # the credentials (inline or by secret); the bucket comes from --to.
            name = "containerName" if kind == "azure" else "bucket"
            section = dict(config[kind])
            if url and not section.get(name):
                section[name] = endpoints.parse_url(url).bucket
            persistence = {**persistence, "config": {**config, kind: section}}
        target = endpoints.from_helm_persistence(persistence, settings, source=str(values), provider=kind)
    if target is None:
        try:
            target = endpoints.from_settings(settings, source=source)
        except TargetError:
            if not url:
                raise
            target = None
    if target is None or (url and endpoints.parse_url(url).provider != target.provider):
        if not url:
            hint = {"s3": "s3://bucket/folder", "gcs": "gs://bucket/folder", "azure": "az://container/folder"}
            raise TargetError(f"no destination given: pass --to {hint.get(provider or 's3')}, or --env-file/--values "
                              "with Label Studio's STORAGE_TYPE settings")
        given = endpoints.parse_url(url)
        target = with_credentials(given, settings)
    target = endpoints.with_overrides(target, url=url, endpoint_url=endpoint_url, region=region)
    if provider and target.provider != provider:
        raise TargetError(f"the destination {target.url} is {target.provider}, not {provider}")
    return target


def with_credentials(target: Target, settings: Mapping[str, str]) -> Target:
    """A bare URL takes credentials and object settings from Label Studio's variables when they are set
    (else the provider's own chain)."""
    from dataclasses import replace

    names = {"s3": "STORAGE_AWS_BUCKET_NAME", "gcs": "STORAGE_GCS_BUCKET_NAME", "azure": "STORAGE_AZURE_CONTAINER_NAME"}
    # The LABEL_STUDIO_ forms win in Label Studio's lookup, so the URL's provider and bucket are set in them.
    configured = endpoints.from_settings({**settings, "LABEL_STUDIO_STORAGE_TYPE": target.provider,
                                          "LABEL_STUDIO_" + names[target.provider]: target.bucket})
    return replace(configured, bucket=target.bucket, folder=target.folder)


def destination_label(target: Target) -> str:
    return f"{target.url} at {endpoints.public(target.endpoint_url) or 'default endpoint'}"


def journal_for(source: Source, target: Target, state: str | None) -> Journal:
    destination = destination_label(target)
    path = Path(state) if state else default_path(str(source.root), destination)
    return Journal(path, source=str(source.root), destination=destination)


@dataclass
class Job:
    source: Source
    target: Target
    store: Store
    journal: Journal

    @property
    def journal_destination(self) -> str:
        return destination_label(self.target)

    def actions(self, *, traverse: bool = True) -> Iterator[Action]:
        """The plan, streamed: local scan x destination listing (unless not `traverse`) x journal."""
        return plan(local_files(self.source), self.store.list() if traverse else None, self.journal.records())


@contextmanager
def open_job(source: Source, target: Target, *, state: str | None = None, transfers: int = 16,
             retries: int = 5, check: bool = True) -> Iterator[Job]:
    if not source.root.is_dir():
        raise NotADataDir(f"{source.root} does not exist or is not a directory")
    store = endpoints.open_store(target, transfers=transfers, retries=retries)
    try:
        if check:
            store.check()
        journal = journal_for(source, target, state)
        try:
            yield Job(source, target, store, journal)
        finally:
            journal.close()
    finally:
        store.close()
