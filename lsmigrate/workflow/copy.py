"""`copy` and `verify` of a local tree against its destination, and the copy of a move."""

from __future__ import annotations

from ..engine.scheduling import Engine
from ..jobs import Source, describe, open_job
from ..journal import state_dir
from ..lock import DestinationLock
from ..report import copy_document, verify_document
from ..verify import verify
from .errors import Refused
from .options import RunOptions


def run_copy(source: Source, target, opts: RunOptions) -> dict:
    settings = opts.settings
    progress = opts.progress("copy")
    try:
        with open_job(source, target, state=opts.state, transfers=settings.transfers,
                      retries=settings.retries) as job, \
                DestinationLock(state_dir(), job.journal_destination):
            actions = job.actions(traverse=opts.traverse)
            if opts.executor == "dask":
                stats = on_cluster(opts, job.target, job.journal, actions, progress, job.store,
                                   listener=opts.listener)
            else:
                stats = Engine(job.store, job.journal, settings, progress).run(actions, listener=opts.listener)
    finally:
        progress.close()
    doc = copy_document(stats, source=str(source.root), destination=describe(target))
    note = job.store.verification_note()
    if note:
        doc["verification"] = note
    return doc


def on_cluster(opts: RunOptions, target, journal, actions, progress, store, source=None, listener=None):
    """--executor dask: same plan, same upload code, on the cluster; the journal stays here."""
    if not opts.scheduler:
        raise Refused("--executor dask needs --scheduler tcp://HOST:8786")
    try:
        from ..dask_executor import run_on_cluster
    except ImportError:
        raise Refused("--executor dask needs Dask: pip install 'lsmigrate[dask]'") from None
    from ..engine.scheduling import abort_orphans

    stats = run_on_cluster(opts.scheduler, target, journal, opts.settings, actions, progress, source=source,
                           listener=listener)
    if stats.fatal is None and stats.failed == 0:
        abort_orphans(store, journal)
    return stats


def run_verify(source: Source, target, opts: RunOptions, *, download: bool) -> dict:
    settings = opts.settings
    with open_job(source, target, state=opts.state, transfers=settings.transfers,
                  retries=settings.retries) as job:
        report = verify(job.actions(), job.store, job.journal, download=download, workers=settings.transfers,
                        chunk_size=settings.chunk_size)
    return verify_document(report, source=str(source.root), destination=describe(target))


def run_move(current, target, opts: RunOptions) -> dict:
    """The copy step of a move: `sync` from the current destination."""
    from ..move import copy_objects

    progress = opts.progress("move")
    try:
        outcome = copy_objects(current, target, settings=opts.settings, state=opts.state, progress=progress)
    finally:
        progress.close()
    return copy_document(outcome.stats, source=describe(current), destination=describe(target))
