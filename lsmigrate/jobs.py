"""Wiring shared by the commands: which tree is the source, which target, which journal, and the plan stream."""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from . import endpoints
from .deployment.kinds import CHART_VALUES, FileKind, given
from .deployment.settings import deployment_settings, file_variables
from .journal import Journal, default_path
from .labelstudio import DataDir, NotADataDir, find_data_dir, get_env, is_data_dir
from .plan import Action, plan
from .scan import LocalFile, Problem, scan_local
from .stores.base import Store
from .stores.registry import PROVIDERS, record_for
from .target import Target, TargetError


@dataclass(frozen=True)
class Source:
    """The tree that is copied: a Label Studio data dir's `media/`, or a plain folder as it is."""

    root: Path
    data_dir: DataDir | None = None
    include_legacy_export: bool = False
    copy_links: bool = False  # --copy-links: follow symlinks, outside the tree too (lsmigrate.scan)


LEGACY_EXPORT_PREFIX = "legacy-export/"


def local_files(source: Source) -> Iterator[LocalFile | Problem]:
    """The source tree, plus the legacy `export/` folder under `legacy-export/` when asked for."""
    media = scan_local(source.root, copy_links=source.copy_links)
    legacy = source.data_dir.legacy_export if source.data_dir else None
    if not (source.include_legacy_export and legacy and legacy.is_dir()):
        return media
    return heapq.merge(media, scan_local(legacy, LEGACY_EXPORT_PREFIX, copy_links=source.copy_links), key=lambda item: item.rel)


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


def _prepared(providers: list[str], named: dict[str, str], where: str, url: str | None) -> str | None:
    """The one provider a file is prepared for (its bucket filled in, the switch not made yet); --to chooses
    between two."""
    chosen = endpoints.parse_url(url).provider if url else None
    if len(providers) > 1 and chosen in providers:
        return chosen
    if len(providers) > 1:
        listed = " and ".join(f"{provider} ({named[provider]})" for provider in providers)
        raise TargetError(f"{where} is prepared for two destinations at once: {listed}; keep one provider's "
                          "settings, or pass --to to choose")
    return providers[0] if providers else None


def _variables_target(settings: Mapping[str, str], own: Mapping[str, str], where: str,
                      url: str | None) -> Target | None:
    live = endpoints.from_settings(settings, source=where)
    if live is not None:
        return live
    named = {name: get_env(record.bucket_variable, own) or "" for name, record in PROVIDERS.items()}
    provider = _prepared([name for name, bucket in named.items() if bucket], named,
                         f"{where} (no STORAGE_TYPE yet)", url)
    if provider is None:
        return None
    # The LABEL_STUDIO_ form wins in Label Studio's lookup, so this names the provider whatever else is set.
    return endpoints.from_settings({**settings, "LABEL_STUDIO_STORAGE_TYPE": provider}, source=where)


def _helm_target(values: str, settings: Mapping[str, str], url: str | None) -> Target | None:
    from .deployment.helm import read_helm_values  # ruamel.yaml loads only where a values file is read

    persistence = read_helm_values(values)
    if str(persistence.get("type") or "volume") != "volume":
        return endpoints.from_helm_persistence(persistence, settings, source=values)
    config = persistence.get("config") if isinstance(persistence.get("config"), Mapping) else {}
    sections = {name: config[name] for name in PROVIDERS if isinstance(config.get(name), Mapping)}
    named = {name: str(section.get(PROVIDERS[name].helm.bucket) or "") for name, section in sections.items()}
    where = f"{values} (global.persistence.type still volume)"
    provider = _prepared([name for name, bucket in named.items() if bucket], named, where, url)
    if provider is None and url:
        # Not prepared, but config.<provider> may already hold the credentials (inline or by secret): the
        # bucket comes from --to.
        given_url = endpoints.parse_url(url)
        if given_url.provider in sections:
            provider = given_url.provider
            sections[provider] = {**sections[provider], PROVIDERS[provider].helm.bucket: given_url.bucket}
    if provider is None:
        return None
    persistence = {**persistence, "config": {**config, provider: sections[provider]}}
    return endpoints.from_helm_persistence(persistence, settings, source=values, provider=provider)


def _chart_file(files: list[tuple[FileKind, str]]) -> str | None:
    """The Helm values file among the deployment files given: it names the destination over any other."""
    return next((path for kind, path in files if kind.holds == CHART_VALUES), None)


def deployment_target(*, env_file: str | None = None, compose: str | None = None,
                      compose_service: str | None = None, values: str | None = None,
                      url: str | None = None) -> Target | None:
    """The destination the deployment names: the one it is switched to, or the one it is prepared for
    (a provider's bucket filled in, STORAGE_TYPE not set yet); None when it names none."""
    settings = deployment_settings(env_file=env_file, compose=compose, compose_service=compose_service)
    files = given(env_file=env_file, compose=compose, values=values)
    chart = _chart_file(files)
    if chart:
        return _helm_target(chart, settings, url)
    own = file_variables(env_file=env_file, compose=compose, compose_service=compose_service)
    return _variables_target(settings, settings if own is None else own, files[0][1] if files else "the environment",
                             url)


def live_target(*, env_file: str | None = None, compose: str | None = None, compose_service: str | None = None,
                values: str | None = None, endpoint_url: str | None = None) -> Target | None:
    """Where the deployment file makes Label Studio serve files from now; None while it still uses local files.

    Label Studio's Azure settings name an account, never an endpoint, so `endpoint_url` (--endpoint-url) is
    how that account is reached; the other providers' endpoints are the file's own."""
    files = given(env_file=env_file, compose=compose, values=values)
    if not files:
        return None
    chart = _chart_file(files)
    if chart:
        from .deployment.helm import read_helm_values

        persistence = read_helm_values(chart)
        live = endpoints.from_helm_persistence(persistence, dict(os.environ), source=chart) \
            if str(persistence.get("type") or "volume") != "volume" else None
    else:
        settings = deployment_settings(env_file=env_file, compose=compose, compose_service=compose_service)
        live = endpoints.from_settings(settings, source=files[0][1])
    if live is not None and not record_for(live.provider).settings_hold_endpoint and endpoint_url:
        live = replace(live, endpoint_url=endpoint_url)
    return live


def _server(target: Target) -> tuple[str, str]:
    """What names the server Label Studio would reach. Its Azure settings hold no endpoint, only the account."""
    if not record_for(target.provider).settings_hold_endpoint:
        return "account", target.account_name or ""
    return "endpoint", (endpoints.public(target.endpoint_url) or "").rstrip("/")


def differences(old: Target, new: Target) -> list[str]:
    """What pointing Label Studio from `old` to `new` changes: provider, bucket, folder, endpoint (account)."""
    (server, before_at), (_, after_at) = _server(old), _server(new)
    changed = []
    for what, before, after in (("provider", old.provider, new.provider), ("bucket", old.bucket, new.bucket),
                                ("folder", old.folder, new.folder), (server, before_at, after_at)):
        if before != after:
            changed.append(f"{what} {before or '(none)'} -> {after or '(none)'}")
    return changed


def resolve_target(*, url: str | None = None, env_file: str | None = None, compose: str | None = None,
                   compose_service: str | None = None, values: str | None = None,
                   endpoint_url: str | None = None, region: str | None = None,
                   provider: str | None = None) -> Target:
    """Flags > deployment file > process environment, the way Label Studio itself reads its settings.

    A `--to` that disagrees with the file wins, and the target's notes say so."""
    named = deployment_target(env_file=env_file, compose=compose, compose_service=compose_service, values=values,
                              url=url)
    if url:
        given = endpoints.parse_url(url)
        if named is not None and named.provider == given.provider:
            target = replace(named, bucket=given.bucket, folder=given.folder)
        else:
            target = with_credentials(given, deployment_settings(env_file=env_file, compose=compose,
                                                                 compose_service=compose_service))
    elif named is None:
        hint = PROVIDERS.get(provider or "s3", PROVIDERS["s3"]).url_example
        raise TargetError(f"no destination given: pass {hint} (--to, or DST of copy/verify), "
                          "or --env-file/--compose/--values with Label Studio's settings for the bucket "
                          "(STORAGE_TYPE may stay unset)")
    else:
        target = named
    target = endpoints.with_overrides(target, endpoint_url=endpoint_url, region=region)
    if not target.endpoint_url:
        # The SDK would take the shell's endpoint variable: name it in the target, so that the switch writes it
        # into the file (the container never sees this shell) and a live file pointing elsewhere is refused.
        shell = next((os.environ[name] for name in record_for(target.provider).shell_endpoint_variables
                      if os.environ.get(name)), None)
        if shell:
            target = replace(target, endpoint_url=shell)
    if provider and target.provider != provider:
        where = "--to" if url else values or env_file or compose or "the environment"
        raise TargetError(f"the destination {target.url} (from {where}) is {target.provider}, not {provider}: "
                          f"use lsmigrate local-to-{target.provider}")
    if url and named is not None and (changed := differences(named, target)):
        where = values or env_file or compose or "the environment"
        target = replace(target, notes=(*target.notes, f"the destination given ({target.url}) wins over {where}, "
                                        f"which names {named.url}: {'; '.join(changed)}"))
    return target


def with_credentials(target: Target, settings: Mapping[str, str]) -> Target:
    """A bare URL takes credentials and object settings from Label Studio's variables when they are set
    (else the provider's own chain)."""
    # The LABEL_STUDIO_ forms win in Label Studio's lookup, so the URL's provider and bucket are set in them.
    configured = endpoints.from_settings({**settings, "LABEL_STUDIO_STORAGE_TYPE": target.provider,
                                          "LABEL_STUDIO_" + record_for(target.provider).bucket_variable: target.bucket})
    return replace(configured, bucket=target.bucket, folder=target.folder)


def endpoint_of(target: Target, environ: Mapping[str, str] | None = None) -> str | None:
    """The endpoint this target's requests really go to, as the stores pick it (flags, the deployment's
    settings, then each provider's own variables); None for the provider's public default."""
    url = record_for(target.provider).endpoint_of(target, os.environ if environ is None else environ)
    return endpoints.public(url.rstrip("/")) if url else None


def describe(target: Target) -> str:
    """The destination as printed: its URL, and the endpoint when it is not the provider's public one."""
    endpoint = endpoint_of(target)
    return target.url + (f" (endpoint {endpoint})" if endpoint else "")


def destination_label(target: Target) -> str:
    """The destination's identity (journal name, lock): the endpoint really used is part of it, so another
    server behind AWS_ENDPOINT_URL never shares the journal of the first."""
    return f"{target.url} at {endpoint_of(target) or 'default endpoint'}"


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
