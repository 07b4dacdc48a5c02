"""`sync`: incremental replication between any two of local, s3://, gs://, az://."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..jobs import describe, destination_label, local_files, source_from_path
from ..journal import state_dir
from ..report import copy_document
from .copy import on_cluster
from .errors import Refused
from .options import RunOptions


@dataclass(frozen=True)
class SyncRequest:
    src: str
    dst: str
    src_endpoint_url: str | None = None
    dst_endpoint_url: str | None = None
    delete: bool = False
    max_delete: int | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    json_log: str | None = None  # a file: one JSON line per file event, then the stats
    include_legacy_export: bool = False  # a local SRC: as for copy
    copy_links: bool = False


@dataclass(frozen=True)
class Synced:
    doc: dict  # copy's document, and what was deleted and on what each comparison rested
    route: str  # "SRC -> DST" as printed, each end with its endpoint


def side_target(location: str, endpoint: str | None):
    """A sync side's target: None for a local path, else the URL's target with its credentials."""
    from .. import endpoints
    from ..deployment.settings import deployment_settings
    from ..jobs import with_credentials

    if not endpoints.is_remote(location):
        return None
    target = with_credentials(endpoints.parse_url(location), deployment_settings())
    return endpoints.with_overrides(target, endpoint_url=endpoint)


def run_sync(request: SyncRequest, opts: RunOptions) -> Synced:
    from .. import sync
    from ..endpoints import open_store

    settings = opts.settings
    dest_target = side_target(request.dst, request.dst_endpoint_url)
    if dest_target is None:
        raise Refused("DST must be a bucket URL (s3://, gs:// or az://); use `lsmigrate copy` for local copies")
    source_target = side_target(request.src, request.src_endpoint_url)
    dest_store = open_store(dest_target, transfers=settings.transfers, retries=settings.retries)
    dest_store.check()
    source_store, entries, origin, label = _source_side(request, source_target, opts)
    log = sync.JsonLog(request.json_log)
    _tell_listener_too(log, opts.listener)
    progress = opts.progress("sync")
    try:
        executor = None
        if opts.executor == "dask":
            def executor(journal, actions, listener):
                return on_cluster(opts, dest_target, journal, actions, progress, dest_store, source=source_target,
                                  listener=listener)
        outcome = sync.run_sync(entries, origin, dest_store, source_label=label, settings=settings,
                                state=opts.state, state_dir=state_dir(), delete=request.delete,
                                max_delete=request.max_delete, filters=sync.Filters(request.include, request.exclude),
                                log=log, progress=progress, executor=executor)
    finally:  # LockHeld goes on to the CLI: exit 4 with its one line
        progress.close()
    doc = _document(outcome, label, dest_target)
    log.event("stats", **{k: v for k, v in doc.items() if k not in ("failures", "delete_failures")})
    log.close()
    dest_store.close()
    if source_store is not None:
        source_store.close()
    return Synced(doc, f"{describe(source_target) if source_target else label} -> {describe(dest_target)}")


def _source_side(request: SyncRequest, source_target, opts: RunOptions) -> tuple:
    """(store or None, entries, origin, label) of SRC: a local tree, or a bucket listed in key order."""
    from ..endpoints import open_store
    from ..origins import LocalOrigin, StoreOrigin

    if source_target is None:
        source = replace(source_from_path(request.src), include_legacy_export=request.include_legacy_export,
                         copy_links=request.copy_links)
        return None, local_files(source), LocalOrigin(), str(source.root)
    store = open_store(source_target, transfers=opts.settings.transfers, retries=opts.settings.retries)
    store.check()
    return store, store.list(), StoreOrigin(store), destination_label(source_target)


def _tell_listener_too(log, listener) -> None:
    """run_sync hands log.result to the engine as its listener: `listener` (-v) hears each result too."""
    if listener is None:
        return
    json_result = log.result

    def both(result) -> None:
        json_result(result)
        listener(result)

    log.result = both


def _document(outcome, label: str, dest_target) -> dict:
    doc = copy_document(outcome.stats, source=label, destination=describe(dest_target))
    doc.update(deleted=outcome.deleted, delete_refused=outcome.delete_refused,
               delete_failures=[{"path": r, "reason": m} for r, m in outcome.delete_failures],
               compared_by=dict(outcome.compared_by))
    if outcome.took_over_lock:
        doc["took_over_lock_of_pid"] = outcome.took_over_lock.get("pid")
    return doc
