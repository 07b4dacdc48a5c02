"""Command line: parse, call, print, exit code. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import sys
import time
from dataclasses import replace

import click

from . import __version__
from .deployment import DeploymentFileError
from .endpoints import TargetError
from .engine import Engine, Settings, part_size_for
from .estimate import estimate, probe
from .jobs import (
    Source,
    destination_label,
    local_files,
    open_job,
    resolve_target,
    source_from_data_dir,
    source_from_path,
)
from .journal import JournalError, state_dir
from .labelstudio import NotADataDir
from .lock import DestinationLock, LockHeld
from .plan import Do, Summary
from .report import (
    Progress,
    copy_document,
    plan_document,
    render_copy,
    render_plan,
    render_verify,
    shown,
    verify_document,
)
from .scan import LocalFile, scan_local
from .units import parse_size
from .uploads.base import StoreError
from .verify import verify

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_VERIFY, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
USER_ERRORS = (NotADataDir, TargetError, DeploymentFileError, JournalError, StoreError)


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SIZE = SizeType()


def fail(message: str, code: int = EXIT_USAGE) -> None:
    from .redact import scrub

    click.echo(f"lsmigrate: error: {shown(scrub(' '.join(str(message).split())))}", err=True)
    sys.exit(code)


def guarded(func):
    """One clear line and the right exit code for every known failure; never a traceback for bad input."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except LockHeld as exc:
            fail(str(exc), EXIT_LOCKED)
        except USER_ERRORS as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            click.echo("lsmigrate: interrupted; run the same command again to resume", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if kwargs.get("verbose", 0) >= 2:
                raise
            fail(f"unexpected {exc.__class__.__name__}: {exc} (run again with -vv for the details, "
                 "and please report it)", EXIT_FAILED)

    return wrapper


def target_options(func):
    for option in reversed([
        click.option("--env-file", type=click.Path(dir_okay=False), help="Label Studio's docker env.list to read the target from."),
        click.option("--compose", type=click.Path(dir_okay=False), help="docker-compose.yml whose Label Studio service sets the target."),
        click.option("--compose-service", help="The Label Studio service's name in --compose, when it cannot be told."),
        click.option("--values", type=click.Path(dir_okay=False), help="Helm values file (global.persistence.*) to read the target from."),
        click.option("--endpoint-url", help="The remote side's endpoint (S3-compatible servers, emulators)."),
        click.option("--region", help="The bucket's region."),
    ]):
        func = option(func)
    return func


def transfer_options(func):
    for option in reversed([
        click.option("--transfers", type=click.IntRange(1, 256), default=16, show_default=True, help="Files (and parts) in flight at once."),
        click.option("--chunk-size", type=SIZE, default="16MiB", show_default=True, help="Part size for multipart uploads (grown to stay within 10,000 parts)."),
        click.option("--multipart-threshold", type=SIZE, default="32MiB", show_default=True, help="Files larger than this go multipart."),
        click.option("--state", type=click.Path(dir_okay=False), help="The journal file (default: under $XDG_STATE_HOME/lsmigrate/)."),
        click.option("--retries", type=click.IntRange(0, 50), default=5, show_default=True, help=(
            "Retries of a request that can succeed again (429, 5xx, SlowDown/ServerBusy, timeouts, dropped "
            "connections; never auth, permission, not-found or checksum errors), after 1, 2, 4 ... s (jittered, "
            "at most 20 s) or the server's Retry-After (up to 30 s). A dead endpoint fails within (N+1) x 5 s "
            "connect timeout + those waits: 61 s for 5, 18 s for 2.")),
        click.option("--include-legacy-export", is_flag=True, help="Also copy the data dir's legacy export/ folder (to legacy-export/)."),
        click.option("--bwlimit", type=SIZE, default="0", help="Upload bandwidth cap in bytes per second (e.g. 20MiB); 0 for none."),
        click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                     help="Run the transfers here, or on a Dask cluster (needs --scheduler)."),
        click.option("--scheduler", help="Dask scheduler address for --executor dask, e.g. tcp://10.0.0.5:8786."),
    ]):
        func = option(func)
    return func


def no_traverse_option(func):
    return click.option("--no-traverse", is_flag=True, help=(
        "Do not list the destination: files the journal verified earlier, with the same size and mtime, are "
        "skipped; the rest are sent. The fast last pass of a cutover (a million unchanged files in seconds), "
        "when nothing else has written to or deleted from the destination since."))(func)


def output_options(func):
    for option in reversed([
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars, only errors and the summary."),
        click.option("--verbose", "-v", count=True, help="More detail (repeat for debug logging)."),
    ]):
        func = option(func)
    return func


def settings_from(kwargs) -> Settings:
    return Settings(transfers=kwargs["transfers"], chunk_size=kwargs["chunk_size"],
                    multipart_threshold=max(kwargs["multipart_threshold"], 1), retries=kwargs["retries"],
                    bwlimit=kwargs.get("bwlimit", 0))


def _target(kwargs, url: str | None, provider: str | None = None):
    from .redact import remember_target

    target = resolve_target(url=url, env_file=kwargs.get("env_file"), compose=kwargs.get("compose"),
                            compose_service=kwargs.get("compose_service"), values=kwargs.get("values"),
                            endpoint_url=kwargs.get("endpoint_url"), region=kwargs.get("region"), provider=provider)
    remember_target(target)  # secrets from a deployment file too, wherever -vv or a message might print them
    return target


def _describe(target) -> str:
    from .endpoints import public

    return target.url + (f" (endpoint {public(target.endpoint_url)})" if target.endpoint_url else "")


def _setup_logging(verbose: int) -> None:
    if verbose >= 2:
        import logging
        import os

        from . import redact

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
        redact.install(os.environ)  # botocore and the SDKs log headers, tokens and request parameters at DEBUG


def _emit(doc: dict, as_json: bool, text: str) -> None:
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        click.echo(text)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="lsmigrate")
def main() -> None:
    """Move a Label Studio deployment's files to S3, GCS or Azure, verified, then switch it over.

    \b
    Typical cutover:
      lsmigrate plan --data-dir /label-studio/data --env-file env.list     how much, how long
      lsmigrate local-to-s3 --data-dir /label-studio/data --env-file env.list
    Exit codes: 0 done and verified, 1 some files failed, 2 usage or configuration error,
    3 verification found missing or different objects, 4 another run holds the lock, 130 interrupted.
    """


# plan ------------------------------------------------------------------------------------------------
def run_plan(source: Source, target, kwargs, *, assume_throughput: int, assume_files: float,
             do_probe: bool) -> dict:
    settings = settings_from(kwargs)
    summary = Summary(multipart_threshold=settings.multipart_threshold)
    with open_job(source, target, state=kwargs.get("state"), transfers=settings.transfers,
                  retries=settings.retries) as job:
        split = SplitCounter(settings) if kwargs.get("executor") == "dask" else None
        for action in job.actions(traverse=not kwargs.get("no_traverse")):
            summary.add(action)
            if action.do is Do.CHECK:  # dry run: compare now, write nothing
                from .compare import compare

                result = compare(action.local, action.remote, job.store, chunk_size=settings.chunk_size)
                summary.settle(action.local.size, bool(result.same))
                if not result.same and split:
                    split.add(action.local.size)
            elif action.do is Do.COPY and split:
                split.add(action.local.size)
        rates = probe(job.store, settings) if do_probe else None
        # The part size really used: the store's minimum, rounded to its granule (GCS: 256 KiB).
        part_size = part_size_for(0, settings.chunk_size, min_part=job.store.min_part_size,
                                  max_parts=job.store.max_parts, granule=job.store.part_granule)
    legacy = None
    if source.data_dir and source.data_dir.legacy_export.is_dir():
        files = [e for e in scan_local(source.data_dir.legacy_export) if isinstance(e, LocalFile)]
        legacy = {"files": len(files), "bytes": sum(f.size for f in files), "included": source.include_legacy_export}
    est = estimate(summary.to_copy.files, summary.to_copy.bytes, bytes_per_second=assume_throughput,
                   files_per_second=assume_files, measured=rates)
    label = f"{source.root}" + (f" (Label Studio data dir {source.data_dir.base})" if source.data_dir else "")
    doc = plan_document(summary, source=label, destination=_describe(target), chunk_size=part_size,
                        estimate=est, legacy=legacy)
    if split:
        doc["cluster_split"] = split.document()
    return doc


class SplitCounter:
    """How `--executor dask` would cut the work, counted as the plan streams by (no list of files kept)."""

    def __init__(self, settings: Settings) -> None:
        from .dask_executor import Batching

        self.settings, self.batching = settings, Batching()
        self.large = self.batches = self._files = self._bytes = 0

    def add(self, size: int) -> None:
        if size > self.settings.multipart_threshold:
            self.large += 1
            return
        if self._files and (self._files >= self.batching.max_files or self._bytes + size > self.batching.max_bytes):
            self.batches += 1
            self._files = self._bytes = 0
        self._files += 1
        self._bytes += size

    def document(self) -> dict:
        small = self.batches + (1 if self._files else 0)
        return {"batches": small + self.large, "large_file_items": self.large, "small_file_batches": small,
                "max_files_per_batch": self.batching.max_files, "max_bytes_per_batch": self.batching.max_bytes}


@main.command()
@click.argument("src", required=False)
@click.argument("dst", required=False)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Label Studio's base data dir (default: as Label Studio finds it).")
@click.option("--to", "to", help="Destination URL: s3://bucket/folder, gs://bucket/folder, az://container/folder.")
@target_options
@transfer_options
@no_traverse_option
@click.option("--assume-throughput", type=SIZE, default="50MiB", show_default=True, help="Bytes per second for the estimate.")
@click.option("--assume-files-per-second", type=click.FloatRange(0.1), default=100.0, show_default=True, help="Small files per second for the estimate.")
@click.option("--probe", "do_probe", is_flag=True, help="Time a short real upload (removed afterwards) instead of assuming.")
@output_options
@guarded
def plan(src, dst, data_dir, to, assume_throughput, assume_files_per_second, do_probe, as_json, quiet, verbose, **kwargs):
    """Dry run: what would move, how much, how long. Nothing is written."""
    _setup_logging(verbose)
    source = source_from_path(src) if src else source_from_data_dir(data_dir)
    source = replace(source, include_legacy_export=kwargs["include_legacy_export"])
    target = _target(kwargs, dst or to)
    doc = run_plan(source, target, kwargs, assume_throughput=assume_throughput,
                   assume_files=assume_files_per_second, do_probe=do_probe)
    _emit(doc, as_json, render_plan(doc))
    sys.exit(EXIT_FAILED if any(p["error"] for p in doc["problems"]) else EXIT_OK)


# copy ------------------------------------------------------------------------------------------------
def run_copy(source: Source, target, kwargs, *, quiet: bool, as_json: bool) -> dict:
    settings = settings_from(kwargs)
    progress = Progress(enabled=None if not (quiet or as_json) else False)
    try:
        with open_job(source, target, state=kwargs.get("state"), transfers=settings.transfers,
                      retries=settings.retries) as job, \
                DestinationLock(state_dir(), job.journal_destination):
            actions = job.actions(traverse=not kwargs.get("no_traverse"))
            if kwargs.get("executor") == "dask":
                stats = _on_cluster(kwargs, job.target, job.journal, settings, actions, progress, job.store)
            else:
                stats = Engine(job.store, job.journal, settings, progress).run(actions)
    finally:
        progress.close()
    doc = copy_document(stats, source=str(source.root), destination=_describe(target))
    if not getattr(job.store, "etag_is_md5", True):  # S3 under SSE-KMS or SSE-C
        doc["verification"] = ("SSE-KMS/SSE-C: ETags are not MD5s, so each upload was verified by the server's "
                               "Content-MD5 check (content-md5), recorded in the journal for later verifies")
    return doc


def _on_cluster(kwargs, target, journal, settings, actions, progress, store, source=None, listener=None):
    """--executor dask: same plan, same upload code, on the cluster; the journal stays here."""
    if not kwargs.get("scheduler"):
        fail("--executor dask needs --scheduler tcp://HOST:8786")
    try:
        from .dask_executor import run_on_cluster
    except ImportError:
        fail("--executor dask needs Dask: pip install 'lsmigrate[dask]'")
    from .engine import abort_orphans

    stats = run_on_cluster(kwargs["scheduler"], target, journal, settings, actions, progress, source=source,
                           listener=listener)
    if stats.fatal is None and stats.failed == 0:
        abort_orphans(store, journal)
    return stats


def copy_exit_code(doc: dict) -> int:
    if doc["fatal"]:
        return EXIT_USAGE
    return EXIT_FAILED if doc["failed"] or doc.get("unaccounted") else EXIT_OK


@main.command()
@click.argument("src")
@click.argument("dst")
@target_options
@transfer_options
@no_traverse_option
@click.option("--dry-run", is_flag=True, help="Print the plan instead of copying.")
@output_options
@guarded
def copy(src, dst, dry_run, as_json, quiet, verbose, **kwargs):
    """Copy SRC (a folder, or a Label Studio data dir whose media/ is taken) to DST, verified and resumable.

    DST is s3://bucket/folder. Files whose checksum matched before are not sent again; a large file that
    was interrupted resumes from its last completed part.
    """
    _setup_logging(verbose)
    source = replace(source_from_path(src), include_legacy_export=kwargs["include_legacy_export"])
    target = _target(kwargs, dst)
    if dry_run:
        doc = run_plan(source, target, kwargs, assume_throughput=50 * 1024 * 1024, assume_files=100.0, do_probe=False)
        _emit(doc, as_json, render_plan(doc))
        sys.exit(EXIT_OK)
    doc = run_copy(source, target, kwargs, quiet=quiet, as_json=as_json)
    _emit(doc, as_json, render_copy(doc))
    if doc["fatal"]:
        click.echo(f"lsmigrate: error: {doc['fatal']}", err=True)
    sys.exit(copy_exit_code(doc))


# verify ----------------------------------------------------------------------------------------------
def run_verify(source: Source, target, kwargs, *, download: bool) -> dict:
    settings = settings_from(kwargs)
    with open_job(source, target, state=kwargs.get("state"), transfers=settings.transfers,
                  retries=settings.retries) as job:
        report = verify(job.actions(), job.store, job.journal, download=download, workers=settings.transfers,
                        chunk_size=settings.chunk_size)
    return verify_document(report, source=str(source.root), destination=_describe(target))


@main.command(name="verify")
@click.argument("src")
@click.argument("dst")
@target_options
@transfer_options
@click.option("--download", is_flag=True, help="Read every object back and hash its bytes (the strongest check).")
@output_options
@guarded
def verify_command(src, dst, download, as_json, quiet, verbose, **kwargs):
    """Compare every file under SRC with its object under DST: missing, different, extra. Exit 3 if not clean."""
    _setup_logging(verbose)
    source = replace(source_from_path(src), include_legacy_export=kwargs["include_legacy_export"])
    doc = run_verify(source, _target(kwargs, dst), kwargs, download=download)
    _emit(doc, as_json, render_verify(doc))
    if doc["fatal"]:
        fail(doc["fatal"])
    sys.exit(EXIT_OK if doc["clean"] else EXIT_VERIFY)


# cutover ---------------------------------------------------------------------------------------------
def confirm_or_refuse(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, refuse unless --yes (never wait on a closed stdin)."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail("not switching without confirmation: pass --yes (no terminal to ask on)")
    if not click.confirm(question, default=False, err=True):
        fail("not switched; nothing was changed", EXIT_OK)


def run_cutover(source: Source, target, kwargs, *, dry_run: bool, yes: bool, no_nginx: bool,
                as_json: bool, quiet: bool) -> dict:
    from . import cutover, deployment
    from .jobs import deployment_settings

    settings = deployment_settings(env_file=kwargs.get("env_file"), compose=kwargs.get("compose"),
                                   compose_service=kwargs.get("compose_service"))
    edit = cutover.prepare(target, settings, env_file=kwargs.get("env_file"), compose=kwargs.get("compose"),
                           compose_service=kwargs.get("compose_service"), values=kwargs.get("values"),
                           no_nginx=no_nginx)
    checked = run_verify(source, target, kwargs, download=False)
    doc = {"file": str(edit.path), "destination": _describe(target), "verify": checked, "diff": edit.diff(),
           "switched": False, "backup": None, "next_steps": []}
    if checked["fatal"] or not checked["clean"]:
        if not as_json:
            click.echo(render_verify(checked), err=True)
        counts = checked["counts"]
        missing = (counts.get("missing", 0) + counts.get("different", 0) + counts.get("unchecked", 0)
                   + counts.get("error", 0) + checked["unaccounted"])
        hint = f"lsmigrate copy {source.data_dir.base if source.data_dir else source.root} {target.url}"
        doc["refused"] = (f"{missing} file(s) of {source.root} are not verified at {target.url}; "
                          f"not switching. Copy them first (`{hint}`), then run cutover again")
        return doc
    if not edit.changed:
        doc["next_steps"] = ["The file already points at this destination; nothing to change."]
        return doc
    if dry_run:
        return doc
    if not as_json and not quiet:
        click.echo(edit.diff(), err=True)
    confirm_or_refuse(f"Switch {edit.path} to {target.url}?", yes)
    doc["backup"] = str(deployment.write_with_backup(edit.path, edit.new_text))
    doc["switched"] = True
    doc["next_steps"] = cutover.next_steps(edit, target)
    return doc


def render_cutover(doc: dict, *, dry_run: bool) -> str:
    if doc.get("refused"):
        return ""
    lines = []
    if dry_run and doc["diff"]:
        lines.append(doc["diff"].rstrip("\n"))
        lines.append(f"(dry run: {doc['file']} not changed; every file is verified at {doc['destination']})")
    if doc["switched"]:
        lines.append(f"Switched {doc['file']} to {doc['destination']} (backup: {doc['backup']}).")
    lines.extend(f"next: {step}" for step in doc["next_steps"])
    return "\n".join(lines)


def cutover_exit(doc: dict) -> int:
    if doc.get("refused"):
        click.echo(f"lsmigrate: error: {doc['refused']}", err=True)
        return EXIT_VERIFY
    return EXIT_OK


@main.command(name="cutover")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Label Studio's base data dir: the files that must be verified.")
@click.option("--to", "to", help="Destination URL, if the file does not name it yet.")
@target_options
@transfer_options
@click.option("--dry-run", is_flag=True, help="Check and print the diff; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Switch without asking.")
@click.option("--no-nginx", is_flag=True, help="Also set USE_NGINX_FOR_UPLOADS/USE_NGINX_FOR_EXPORT_DOWNLOADS=false.")
@click.option("--rollback", is_flag=True, help="Restore the file from its latest lsmigrate backup, byte for byte.")
@output_options
@guarded
def cutover_command(data_dir, to, dry_run, yes, no_nginx, rollback, as_json, quiet, verbose, **kwargs):
    """Switch STORAGE_TYPE in an env.list, compose file or Helm values, once every file is verified.

    Refuses while any file of the data dir is missing or different at the destination. Writes a
    timestamped backup next to the file and replaces it atomically; --rollback restores it.
    """
    _setup_logging(verbose)
    if rollback:
        from .deployment import rollback as restore

        files = [f for f in (kwargs.get("env_file"), kwargs.get("compose"), kwargs.get("values")) if f]
        if len(files) != 1:
            fail("--rollback takes exactly one of --env-file, --compose or --values")
        backup = restore(files[0])
        _emit({"file": files[0], "restored_from": str(backup)}, as_json, f"Restored {files[0]} from {backup}.")
        sys.exit(EXIT_OK)
    source = replace(source_from_data_dir(data_dir), include_legacy_export=kwargs["include_legacy_export"])
    target = _target(kwargs, to)
    doc = run_cutover(source, target, kwargs, dry_run=dry_run, yes=yes, no_nginx=no_nginx, as_json=as_json,
                      quiet=quiet)
    _emit(doc, as_json, render_cutover(doc, dry_run=dry_run))
    sys.exit(cutover_exit(doc))


def _local_to_steps(result: dict, source: Source, target, kwargs, *, download: bool, yes: bool, no_nginx: bool,
                    no_cutover: bool, as_json: bool, quiet: bool) -> int:
    """copy (done) -> verify -> cutover, stopping at the first step that is not clean."""
    copied = result["copy"]
    messages = result.setdefault("messages", [])
    if copied["fatal"]:
        messages.append(f"lsmigrate: error: {copied['fatal']}")
        return EXIT_USAGE
    if copied["failed"] or copied["unaccounted"]:
        count = copied["failed"] or copied["unaccounted"]
        messages.append(f"lsmigrate: {count} file(s) failed; fix them and run the same command again")
        return EXIT_FAILED
    result["verify"] = checked = run_verify(source, target, kwargs, download=download)
    if checked["fatal"]:
        messages.append(f"lsmigrate: error: {checked['fatal']}")
        return EXIT_USAGE
    if not checked["clean"]:
        messages.append("lsmigrate: verification found missing, different or unchecked objects; not switching")
        return EXIT_VERIFY
    has_file = any(kwargs.get(k) for k in ("env_file", "compose", "values"))
    if no_cutover or not has_file:
        if not has_file and not no_cutover:
            messages.append("Every file is verified. No --env-file/--compose/--values given, so the deployment "
                            "was not switched (run `lsmigrate cutover` with one).")
        return EXIT_OK
    result["cutover"] = switched = run_cutover(source, target, kwargs, dry_run=False, yes=yes, no_nginx=no_nginx,
                                               as_json=as_json, quiet=quiet)
    return cutover_exit(switched)


# sync ------------------------------------------------------------------------------------------------
def _side(location: str, endpoint: str | None):
    """A sync side's target: None for a local path, else the URL's target with its credentials."""
    from . import endpoints
    from .jobs import deployment_settings, with_credentials

    if not endpoints.is_remote(location):
        return None
    target = with_credentials(endpoints.parse_url(location), deployment_settings())
    return endpoints.with_overrides(target, endpoint_url=endpoint)


@main.command(name="sync")
@click.argument("src")
@click.argument("dst")
@click.option("--src-endpoint-url", help="Endpoint of the source side (else its provider's variables).")
@click.option("--dst-endpoint-url", "--endpoint-url", "dst_endpoint_url", help="Endpoint of the destination side.")
@transfer_options
@click.option("--delete", is_flag=True, help="Delete destination objects absent from the source (after an error-free copy).")
@click.option("--max-delete", type=click.IntRange(0), default=None, help="With --delete: above this many, delete nothing and exit 1.")
@click.option("--include", multiple=True, help="Only paths matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip paths matching this glob (repeatable); wins over --include.")
@click.option("--json-log", type=click.Path(dir_okay=False), help="Append one JSON line per file event and a final stats line.")
@output_options
@guarded
def sync_command(src, dst, src_endpoint_url, dst_endpoint_url, delete, max_delete, include, exclude,
                 json_log, as_json, quiet, verbose, **kwargs):
    """Replicate SRC to DST incrementally (local, s3://, gs://, az:// on either side), for cron.

    An object is copied when it is missing or its size or checksum differs (size and modification time
    where one side has no MD5). A second run with nothing changed transfers nothing. One run per
    destination at a time (exit 4 otherwise). Large objects stream through memory in parts.
    """
    from .endpoints import open_store
    from .origins import LocalOrigin, StoreOrigin
    from .sync import Filters, JsonLog, run_sync

    _setup_logging(verbose)
    settings = settings_from(kwargs)
    dest_target = _side(dst, dst_endpoint_url)
    if dest_target is None:
        fail("DST must be a bucket URL (s3://, gs:// or az://); use `lsmigrate copy` for local copies")
    source_target = _side(src, src_endpoint_url)
    dest_store = open_store(dest_target, transfers=settings.transfers, retries=settings.retries)
    dest_store.check()
    if source_target is None:
        source = replace(source_from_path(src), include_legacy_export=kwargs["include_legacy_export"])
        entries, origin, label = local_files(source), LocalOrigin(), str(source.root)
    else:
        source_store = open_store(source_target, transfers=settings.transfers, retries=settings.retries)
        source_store.check()
        entries, origin = source_store.list(), StoreOrigin(source_store)
        label = destination_label(source_target)
    log = JsonLog(json_log)
    progress = Progress(enabled=False if (quiet or as_json) else None, label="sync")
    try:
        executor = None
        if kwargs.get("executor") == "dask":
            def executor(journal, actions, listener):
                return _on_cluster(kwargs, dest_target, journal, settings, actions, progress, dest_store,
                                   source=source_target, listener=listener)
        outcome = run_sync(entries, origin, dest_store, source_label=label, settings=settings,
                           state=kwargs.get("state"), state_dir=state_dir(), delete=delete, max_delete=max_delete,
                           filters=Filters(tuple(include), tuple(exclude)), log=log, progress=progress,
                           executor=executor)
    finally:  # LockHeld goes on to `guarded`: exit 4 with its one line
        progress.close()
    doc = copy_document(outcome.stats, source=label, destination=_describe(dest_target))
    doc.update(deleted=outcome.deleted, delete_refused=outcome.delete_refused,
               delete_failures=[{"path": r, "reason": m} for r, m in outcome.delete_failures],
               compared_by=dict(outcome.bases))
    if outcome.took_over_lock:
        doc["took_over_lock_of_pid"] = outcome.took_over_lock.get("pid")
    log.event("stats", **{k: v for k, v in doc.items() if k not in ("failures", "delete_failures")})
    log.close()
    dest_store.close()
    if source_target is not None:
        source_store.close()
    text = render_copy(doc) + f"\ndeleted {outcome.deleted:,}" + (
        f"; {outcome.delete_refused}" if outcome.delete_refused else "")
    basis = ", ".join(f"{n:,} by {how}" for how, n in sorted(outcome.bases.items()))
    if basis:
        text += f"\ncompared {basis}"
    _emit(doc, as_json, text)
    if doc["fatal"]:
        fail(doc["fatal"])
    failed = doc["failed"] or doc["unaccounted"] or outcome.delete_refused or outcome.delete_failures
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


# doctor ----------------------------------------------------------------------------------------------
def run_doctor(target, kwargs, *, apply_cors: bool) -> dict:
    from . import doctor
    from .endpoints import open_store

    store = open_store(target, transfers=4, retries=kwargs.get("retries", 2))
    try:
        checks = doctor.run_checks(store, target, apply_cors=apply_cors)
    finally:
        store.close()
    policy = doctor.s3_policy(target) if target.provider == "s3" else None
    return {"destination": _describe(target), "checks": [check.__dict__ for check in checks],
            "ok": all(check.status != doctor.FAIL for check in checks), "policy": policy}


def render_doctor(doc: dict) -> str:
    marks = {"pass": "[ok]  ", "fail": "[FAIL]", "warn": "[warn]"}
    lines = [f"Destination: {doc['destination']}"]
    for check in doc["checks"]:
        detail = f": {check['detail']}" if check["detail"] else ""
        lines.append(f"{marks[check['status']]} {check['name']}{detail}")
        if check["fix"] and check["status"] != "pass":
            lines.append(f"        fix: {check['fix']}")
    if doc["policy"]:
        lines.append("Least-privilege policy for this bucket and folder:")
        lines.append(json.dumps(doc["policy"], indent=2))
    return "\n".join(lines)


@main.command(name="doctor")
@click.option("--to", "to", help="Destination URL (default: from the deployment's settings).")
@target_options
@click.option("--retries", type=click.IntRange(0, 50), default=2, show_default=True, help="Retries per request.")
@click.option("--apply-cors", is_flag=True, help="Set the CORS rule from Label Studio's guide when there is none.")
@output_options
@guarded
def doctor_command(to, apply_cors, as_json, quiet, verbose, **kwargs):
    """Preflight: credentials, bucket, list/put/get/delete under the folder, CORS, encryption at rest.

    Prints a checklist with the fix for each failed check and the least-privilege policy. Exit 2 when a
    check fails.
    """
    _setup_logging(verbose)
    target = _target(kwargs, to)
    doc = run_doctor(target, kwargs, apply_cors=apply_cors)
    _emit(doc, as_json, render_doctor(doc))
    sys.exit(EXIT_OK if doc["ok"] else EXIT_USAGE)


# local-to-* --------------------------------------------------------------------------------------------
def local_to(provider: str):
    scheme = {"s3": "s3://bucket/folder", "gcs": "gs://bucket/folder", "azure": "az://container/folder"}[provider]

    @click.option("--data-dir", type=click.Path(file_okay=False), help="Label Studio's base data dir (default: as Label Studio finds it).")
    @click.option("--to", "to", help=f"Destination URL ({scheme}); default: from the deployment's settings.")
    @target_options
    @transfer_options
    @no_traverse_option
    @click.option("--download", is_flag=True, help="Verify by reading every object back.")
    @click.option("--yes", "-y", is_flag=True, help="Switch the deployment file without asking.")
    @click.option("--no-nginx", is_flag=True, help="At the switch, also set USE_NGINX_FOR_UPLOADS/..._EXPORT_DOWNLOADS=false.")
    @click.option("--no-cutover", is_flag=True, help="Copy and verify only; leave the deployment file alone.")
    @output_options
    @guarded
    def command(data_dir, to, download, yes, no_nginx, no_cutover, as_json, quiet, verbose, **kwargs):
        _setup_logging(verbose)
        source = replace(source_from_data_dir(data_dir), include_legacy_export=kwargs["include_legacy_export"])
        target = _target(kwargs, to, provider)
        for note in target.notes:
            click.echo(f"note: {note}", err=True)
        started = time.monotonic()
        checked = run_doctor(target, kwargs, apply_cors=False)
        blocking = [c for c in checked["checks"] if c["status"] == "fail" and not c["name"].startswith("CORS")]
        if blocking:  # CORS matters to browser uploads later, not to the copy: it stays a warning here
            if as_json:
                _emit({"doctor": checked}, True, "")
            else:
                click.echo(render_doctor(checked), err=True)
            fail(f"preflight failed: {blocking[0]['name']}: {blocking[0]['detail']}")
        if not as_json and not quiet:
            for check in checked["checks"]:
                if check["status"] != "pass":
                    click.echo(f"warning: {check['name']}: {check['detail']} ({check['fix'] or 'see lsmigrate doctor'})",
                               err=True)
            click.echo(f"Copying {source.root} -> {_describe(target)}", err=True)
        result = {"doctor": checked, "copy": run_copy(source, target, kwargs, quiet=quiet, as_json=as_json),
                  "verify": None, "cutover": None}
        code = _local_to_steps(result, source, target, kwargs, download=download, yes=yes, no_nginx=no_nginx,
                               no_cutover=no_cutover, as_json=as_json, quiet=quiet)
        result["seconds"] = round(time.monotonic() - started, 3)
        text = [render_copy(result["copy"])]
        if result["verify"]:
            text.append(render_verify(result["verify"]))
        if result["cutover"]:
            text.append(render_cutover(result["cutover"], dry_run=False))
        _emit(result, as_json, "\n".join(t for t in text if t))
        for line in result.get("messages", []):
            click.echo(line, err=True)
        sys.exit(code)

    command.__doc__ = (f"Copy a Label Studio data dir's media to {provider.upper()}, verify every file, then switch.\n\n"
                       "The target comes from --to, or from the deployment's own settings (--env-file, --compose,\n"
                       "--values, or the environment), exactly as Label Studio reads them. With one of those files\n"
                       "given, it is switched to the bucket (asking first, unless --yes) once all is verified.")
    return command


main.command(name="local-to-s3")(local_to("s3"))
main.command(name="local-to-gcs")(local_to("gcs"))
main.command(name="local-to-azure")(local_to("azure"))


if __name__ == "__main__":  # pragma: no cover
    main()
