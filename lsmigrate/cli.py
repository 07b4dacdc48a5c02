"""Command line: parse, call, print, exit code. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time
from dataclasses import replace

import click

from . import __version__
from .deployment import DeploymentFileError
from .endpoints import TargetError
from .engine import Engine, Settings, SettingsError, check_sizes, part_size_for
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
EXIT_TERMINATED = 143  # SIGTERM, as a shell reports a process it ended (128 + 15)
USER_ERRORS = (NotADataDir, TargetError, DeploymentFileError, JournalError, StoreError, SettingsError)


class SizeType(click.ParamType):
    name = "SIZE"

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum

    def convert(self, value, param, ctx):
        try:
            size = value if isinstance(value, int) else parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if size < self.minimum:
            self.fail(f"{value!r} is too small: at least {self.minimum} byte(s)", param, ctx)
        return size


SIZE = SizeType()
POSITIVE_SIZE = SizeType(minimum=1)


def error_line(message: str) -> str:
    """`lsmigrate: error: <message>` on one line, secrets masked and control characters escaped."""
    from .redact import scrub

    return f"lsmigrate: error: {shown(scrub(' '.join(str(message).split())))}"


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(error_line(message), err=True)
    sys.exit(code)


class _UsageLine(click.UsageError):
    """A usage error in the tool's own one-line format instead of click's usage block (exit 2 all the same)."""

    def show(self, file=None) -> None:
        names, ctx = [], self.ctx
        while ctx is not None and ctx.parent is not None:  # the root's name may be `python -m lsmigrate.cli`
            names.append(ctx.info_name)
            ctx = ctx.parent
        message = self.format_message().rstrip(".")
        command = " ".join(["lsmigrate", *reversed(names)])
        click.echo(error_line(f"{message[:1].lower()}{message[1:]} (see '{command} --help')"), err=True)


class _Main(click.Group):
    """Every usage error, the group's and its commands' (they are parsed inside `invoke`), as one line."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _UsageLine(exc.format_message(), ctx=exc.ctx) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.NoArgsIsHelpError, _UsageLine):
            raise
        except click.UsageError as exc:
            raise _UsageLine(exc.format_message(), ctx=exc.ctx) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt: the same orderly stop, then exit 143."""


_signalled = {"code": 0, "said": False}  # the first SIGINT/SIGTERM's exit code; its line printed yet?


def _stop_line(code: int) -> str:
    how = "terminated" if code == EXIT_TERMINATED else "interrupted"
    return f"lsmigrate: {how}; run the same command again to resume"


def _on_signal(signum, frame) -> None:
    """The first SIGINT or SIGTERM unwinds the run in order (the engine stops its threads, `guarded` says
    so); a second one exits at once, whatever that order is still waiting for."""
    code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
    if _signalled["code"]:
        if not _signalled["said"]:
            os.write(2, (_stop_line(code) + "\n").encode())
        os._exit(code)
    _signalled["code"] = code
    raise Terminated() if code == EXIT_TERMINATED else KeyboardInterrupt()


def _catch_signals() -> dict:
    """Installs `_on_signal` for SIGINT and SIGTERM; returns the handlers to put back (commands also run
    inside other programs: the tests' CliRunner). Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    _signalled.update(code=0, said=False)
    return {number: signal.signal(number, _on_signal) for number in (signal.SIGINT, signal.SIGTERM)}


def guarded(func):
    """One clear line and the right exit code for every known failure; never a traceback for bad input."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        previous = _catch_signals()
        try:
            return func(*args, **kwargs)
        except LockHeld as exc:
            fail(str(exc), EXIT_LOCKED)
        except USER_ERRORS as exc:
            fail(str(exc))
        except KeyboardInterrupt as exc:
            code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
            click.echo(_stop_line(code), err=True)
            _signalled["said"] = True
            if _signalled["code"]:
                # A real signal, and the run has unwound: journal committed and closed, lock released. Threads
                # still inside a request (a stalled network) would hold the exit for their timeouts, and what
                # they finish can no longer be journaled: end here, without waiting for them.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            sys.exit(code)
        except Exception as exc:
            if kwargs.get("verbose", 0) >= 2:
                raise
            fail(f"unexpected {exc.__class__.__name__}: {exc} (run again with -vv for the details, "
                 "and please report it)", EXIT_FAILED)
        finally:
            if not _signalled["code"]:  # after a signal, a second one must still exit at once
                for number, handler in previous.items():
                    if handler is not None:
                        signal.signal(number, handler)

    return wrapper


# Shared options. Each command lists the ones it uses (`options(...)`), worded for its provider (None: any).
TARGET = ("env-file", "compose", "compose-service", "values", "endpoint-url", "region")
JOURNAL = ("state", "retries", "include-legacy-export", "copy-links")
TRANSFER = ("transfers", "chunk-size", "multipart-threshold", "bwlimit", "executor", "scheduler")

_ENDPOINT_HELP = {
    None: "The destination's endpoint: an S3-compatible server, a GCS emulator or an Azure blob endpoint "
          "(default: each provider's variables, else its public endpoint).",
    "s3": "An S3-compatible server, e.g. http://minio:9000 (default: STORAGE_AWS_ENDPOINT_URL, AWS_ENDPOINT_URL, "
          "else AWS).",
    "gcs": "A GCS endpoint, e.g. an emulator's http://localhost:4443 (default: STORAGE_EMULATOR_HOST, else "
           "Google's).",
    "azure": "The blob endpoint, e.g. Azurite's http://127.0.0.1:10000/devstoreaccount1 (default: the connection "
             "string's, else https://<account>.blob.core.windows.net).",
}
_CHUNK_HELP = {
    None: "Part size for large files (S3: grown to stay within 10,000 parts; GCS: rounded up to 256 KiB; "
          "Azure: the block size).",
    "s3": "Part size for multipart uploads (at least 5 MiB, grown to stay within 10,000 parts).",
    "gcs": "Chunk size of resumable uploads (at least 8 MiB, rounded up to a multiple of 256 KiB).",
    "azure": "Block size for large blobs (at least 1 MiB, grown to stay within 50,000 blocks).",
}
_BUSY = {None: "SlowDown/ServerBusy, ", "s3": "SlowDown, ", "gcs": "", "azure": "ServerBusy, "}
_THRESHOLD_HELP = {None: "Files larger than this are sent in parts.", "s3": "Files larger than this go multipart.",
                   "gcs": "Files larger than this go in a resumable session, chunk by chunk.",
                   "azure": "Files larger than this go as blocks, committed at the end."}


def _shared_options(provider: str | None) -> dict:
    """Every shared option by name, its help worded for `provider`."""
    return {
        "env-file": click.option("--env-file", type=click.Path(dir_okay=False), help="Label Studio's docker env.list to read the target from."),
        "compose": click.option("--compose", type=click.Path(dir_okay=False), help="docker-compose.yml whose Label Studio service sets the target."),
        "compose-service": click.option("--compose-service", help="The Label Studio service's name in --compose, when it cannot be told."),
        "values": click.option("--values", type=click.Path(dir_okay=False), help="Helm values file (global.persistence.*) to read the target from."),
        "endpoint-url": click.option("--endpoint-url", help=_ENDPOINT_HELP[provider]),
        "region": click.option("--region", help="The S3 bucket's region (default: STORAGE_AWS_REGION_NAME, AWS_REGION)."),
        "transfers": click.option("--transfers", type=click.IntRange(1, 256), default=16, show_default=True, help="Files (and parts) in flight at once."),
        "chunk-size": click.option("--chunk-size", type=POSITIVE_SIZE, default="16MiB", show_default=True, help=_CHUNK_HELP[provider]),
        "multipart-threshold": click.option("--multipart-threshold", type=SIZE, default="32MiB", show_default=True,
                                            help=_THRESHOLD_HELP[provider]),
        "state": click.option("--state", type=click.Path(dir_okay=False), help="The journal file (default: under $XDG_STATE_HOME/lsmigrate/)."),
        "retries": click.option("--retries", type=click.IntRange(0, 50), default=5, show_default=True, help=(
            f"Retries of a request that can succeed again (429, 5xx, {_BUSY[provider]}timeouts, dropped "
            "connections; never auth, permission, not-found or checksum errors), after 1, 2, 4 ... s (jittered, "
            "at most 20 s) or the server's Retry-After (up to 30 s). An endpoint that never accepts the connection "
            "fails within (N+1) x 5 s connect timeout + those waits: 61 s for 5, 18 s for 2 (one that accepts "
            "and never answers: add up to a minute of read timeout a try).")),
        "include-legacy-export": click.option("--include-legacy-export", is_flag=True, help="Also copy the data dir's legacy export/ folder (to legacy-export/)."),
        "copy-links": click.option("--copy-links", "-L", is_flag=True, help=(
            "Follow symlinks (rclone's -L), to files and directories, outside the tree too: media/upload on "
            "another disk. A link to something inside the tree is skipped (copied once, at its real place); "
            "loops are not entered. Without it, links leading outside the tree are refused.")),
        "bwlimit": click.option("--bwlimit", type=SIZE, default="0", help="Upload bandwidth cap in bytes per second (e.g. 20MiB); 0 for none."),
        "executor": click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                                 help="Run the transfers here, or on a Dask cluster (needs --scheduler)."),
        "scheduler": click.option("--scheduler", help="Dask scheduler address for --executor dask, e.g. tcp://10.0.0.5:8786."),
    }


def options(*names: str, provider: str | None = None):
    """The named shared options, in this order in --help, worded for `provider`."""

    def decorate(func):
        table = _shared_options(provider)
        for name in reversed(names):
            func = table[name](func)
        return func

    return decorate


target_options = options(*TARGET)
transfer_options = options(*TRANSFER, *JOURNAL)


def no_traverse_option(func):
    return click.option("--no-traverse", is_flag=True, help=(
        "Do not list the destination: files the journal verified earlier, with the same size and mtime, are "
        "skipped; the rest are sent. The fast last pass of a cutover (a million unchanged files in seconds), "
        "when nothing else has written to or deleted from the destination since."))(func)


def output_options(func):
    for option in reversed([
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text."),
        click.option("--quiet", "-q", is_flag=True, help=(
            "Print nothing on success (plan and doctor still print their report); errors and per-file "
            "failures still go to stderr.")),
        click.option("--verbose", "-v", count=True, help=(
            "-v: one line per file on stderr, its outcome, on what its verification rests, its name "
            "(`copied  etag  upload/1/a.jpg`); -vv: also the libraries' debug log.")),
    ]):
        func = option(func)
    return func


def settings_from(kwargs) -> Settings:
    """The transfer settings: given options, else the defaults (a command lists only the options it uses)."""
    default = Settings()
    return Settings(transfers=kwargs.get("transfers", default.transfers),
                    chunk_size=kwargs.get("chunk_size", default.chunk_size),
                    multipart_threshold=max(kwargs.get("multipart_threshold", default.multipart_threshold), 1),
                    retries=kwargs.get("retries", default.retries), bwlimit=kwargs.get("bwlimit", 0))


def _target(kwargs, url: str | None, provider: str | None = None):
    from .redact import remember_target

    target = resolve_target(url=url, env_file=kwargs.get("env_file"), compose=kwargs.get("compose"),
                            compose_service=kwargs.get("compose_service"), values=kwargs.get("values"),
                            endpoint_url=kwargs.get("endpoint_url"), region=kwargs.get("region"), provider=provider)
    remember_target(target)  # secrets from a deployment file too, wherever -vv or a message might print them
    for note in target.notes:  # --to overriding the file, secrets the file leaves to the environment
        click.echo(f"note: {note}", err=True)
    return target


def _describe(target) -> str:
    from .jobs import describe

    return describe(target)  # with the endpoint really used, AWS_ENDPOINT_URL's and the like too


def _setup_logging(verbose: int) -> None:
    if verbose >= 2:
        import logging
        import os

        from . import redact

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
        redact.install(os.environ)  # botocore and the SDKs log headers, tokens and request parameters at DEBUG


def _file_log(verbose: int):
    """-v: the engine's listener printing one line per file to stderr, rclone-style: outcome, basis, name."""
    if verbose < 1:
        return None
    from tqdm import tqdm

    def line(result) -> None:
        why = f": {shown(result.reason)}" if result.reason and result.outcome.value in ("failed", "problem") else ""
        # tqdm.write keeps the lines clear of the progress bars (it prints plainly when there are none).
        tqdm.write(f"{result.outcome.value:<9} {result.basis or '-':<14} {shown(result.rel)}{why}", file=sys.stderr)

    return line


def _emit(doc: dict, as_json: bool, text: str, *, quiet: bool = False) -> None:
    """The document (--json), else the text unless `quiet` (-q on success)."""
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif not quiet:
        click.echo(text)


def _say_failures(doc: dict, as_json: bool) -> None:
    """Per-file failures of a copy go to stderr (with --json they are in the document)."""
    from .report import render_failures

    lines = render_failures(doc)
    if lines and not as_json:
        click.echo(lines, err=True)


@click.group(name="lsmigrate", cls=_Main,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="lsmigrate")
def main() -> None:
    """Move a Label Studio deployment's files to S3, GCS or Azure, verified, then switch it over.

    \b
    Examples (a cutover):
      lsmigrate plan --data-dir /label-studio/data --env-file env.list         how much, how long
      lsmigrate doctor --env-file env.list                                     can the bucket take it
      lsmigrate local-to-s3 --data-dir /label-studio/data --env-file env.list  copy, verify, switch
      lsmigrate cutover --rollback --env-file env.list                         undo the switch
    env.list: the bucket's variables filled in (STORAGE_AWS_BUCKET_NAME, STORAGE_AWS_FOLDER, region,
    keys), STORAGE_TYPE not set yet; local-to-s3 adds STORAGE_TYPE=s3 once every file is verified.
    Each command's --help has its own examples.
    \b
    Exit codes:
      0    done and verified
      1    some files failed (run the same command again), or the switch was declined at the prompt
      2    usage or configuration error
      3    verification found missing, different or unchecked objects
      4    another run holds the lock
      130  interrupted (Ctrl-C; run the same command again to resume)
      143  terminated (SIGTERM; run the same command again to resume)
    """


# plan ------------------------------------------------------------------------------------------------
def run_plan(source: Source, target, kwargs, *, assume_throughput: int, assume_files: float,
             do_probe: bool) -> dict:
    settings = settings_from(kwargs)
    summary = Summary(multipart_threshold=settings.multipart_threshold)
    with open_job(source, target, state=kwargs.get("state"), transfers=settings.transfers,
                  retries=settings.retries) as job:
        store = job.store
        note = check_sizes(store, settings)  # what the provider cannot take is refused (exit 2)

        def part_size_of(size: int) -> int:  # the part size the engine will use for a file of this size
            return part_size_for(size, settings.chunk_size, min_part=store.min_part_size,
                                 max_parts=store.max_parts, granule=store.part_granule)

        part_size, larger = part_size_of(0), []
        split = SplitCounter(settings) if kwargs.get("executor") == "dask" else None
        for action in job.actions(traverse=not kwargs.get("no_traverse")):
            summary.add(action)
            sending = action.do is Do.COPY
            if action.do is Do.CHECK:  # dry run: compare now, write nothing
                from .compare import compare

                result = compare(action.local, action.remote, job.store, chunk_size=settings.chunk_size)
                summary.settle(action.local.size, bool(result.same))
                sending = not result.same
                if not result.same and split:
                    split.add(action.local.size)
            elif action.do is Do.COPY and split:
                split.add(action.local.size)
            size = action.local.size if sending else 0
            if size > settings.multipart_threshold and part_size_of(size) > part_size and len(larger) < 100:
                larger.append({"path": action.rel, "bytes": size, "part_size": part_size_of(size),
                               "parts": -(-size // part_size_of(size)), "max_parts": store.max_parts})
        rates = probe(job.store, settings) if do_probe else None
    legacy = None
    if source.data_dir and source.data_dir.legacy_export.is_dir():
        files = [e for e in scan_local(source.data_dir.legacy_export, copy_links=source.copy_links)
                 if isinstance(e, LocalFile)]
        legacy = {"files": len(files), "bytes": sum(f.size for f in files), "included": source.include_legacy_export}
    est = estimate(summary.to_copy.files, summary.to_copy.bytes, bytes_per_second=assume_throughput,
                   files_per_second=assume_files, measured=rates)
    label = f"{source.root}" + (f" (Label Studio data dir {source.data_dir.base})" if source.data_dir else "")
    doc = plan_document(summary, source=label, destination=_describe(target), chunk_size=part_size,
                        estimate=est, legacy=legacy)
    doc["multipart"].update(note=note, larger_parts=larger)  # the part sizes really used, and why
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
@options("transfers", "chunk-size", "multipart-threshold", "executor", *JOURNAL)
@no_traverse_option
@click.option("--assume-throughput", type=SIZE, default="50MiB", show_default=True, help="Bytes per second for the estimate.")
@click.option("--assume-files-per-second", type=click.FloatRange(0.1), default=100.0, show_default=True, help="Small files per second for the estimate.")
@click.option("--probe", "do_probe", is_flag=True, help="Time a short real upload (removed afterwards) instead of assuming.")
@output_options
@guarded
def plan(src, dst, data_dir, to, assume_throughput, assume_files_per_second, do_probe, as_json, quiet, verbose, **kwargs):
    """Dry run: what would move, how much, how long. Nothing is written.

    The source is SRC or --data-dir, the destination DST, --to or the deployment's settings.

    \b
    Examples:
      lsmigrate plan --data-dir /label-studio/data --to s3://my-bucket/ls-media
      lsmigrate plan --data-dir /label-studio/data --env-file env.list --probe --json
      lsmigrate plan ./mydata gs://my-bucket/media --executor dask
    """
    _setup_logging(verbose)
    source = source_from_path(src) if src else source_from_data_dir(data_dir)
    source = replace(source, include_legacy_export=kwargs["include_legacy_export"],
                             copy_links=kwargs.get("copy_links", False))
    target = _target(kwargs, dst or to)
    doc = run_plan(source, target, kwargs, assume_throughput=assume_throughput,
                   assume_files=assume_files_per_second, do_probe=do_probe)
    _emit(doc, as_json, render_plan(doc))
    sys.exit(EXIT_FAILED if any(p["error"] for p in doc["problems"]) else EXIT_OK)


# copy ------------------------------------------------------------------------------------------------
def run_copy(source: Source, target, kwargs, *, quiet: bool, as_json: bool, listener=None) -> dict:
    settings = settings_from(kwargs)
    progress = Progress(enabled=None if not (quiet or as_json) else False)
    try:
        with open_job(source, target, state=kwargs.get("state"), transfers=settings.transfers,
                      retries=settings.retries) as job, \
                DestinationLock(state_dir(), job.journal_destination):
            actions = job.actions(traverse=not kwargs.get("no_traverse"))
            if kwargs.get("executor") == "dask":
                stats = _on_cluster(kwargs, job.target, job.journal, settings, actions, progress, job.store,
                                    listener=listener)
            else:
                stats = Engine(job.store, job.journal, settings, progress).run(actions, listener=listener)
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
@click.argument("dst", required=False)
@target_options
@transfer_options
@no_traverse_option
@click.option("--dry-run", is_flag=True, help="Print the plan instead of copying.")
@output_options
@guarded
def copy(src, dst, dry_run, as_json, quiet, verbose, **kwargs):
    """Copy SRC (a folder, or a Label Studio data dir whose media/ is taken) to DST, verified and resumable.

    DST is s3://bucket/folder, gs://... or az://...; without it, the destination the deployment file names
    (--env-file, --compose, --values), switched or only prepared (STORAGE_TYPE not set yet). Files whose checksum matched before are not sent again; a large file that
    was interrupted resumes from its last completed part.

    \b
    Examples:
      lsmigrate copy /label-studio/data s3://my-bucket/ls-media
      lsmigrate copy /label-studio/data --env-file env.list --no-traverse
      lsmigrate copy ./mydata az://my-container/media --transfers 32 --bwlimit 20MiB -v
    """
    _setup_logging(verbose)
    source = replace(source_from_path(src), include_legacy_export=kwargs["include_legacy_export"],
                                            copy_links=kwargs.get("copy_links", False))
    target = _target(kwargs, dst)
    if dry_run:
        doc = run_plan(source, target, kwargs, assume_throughput=50 * 1024 * 1024, assume_files=100.0, do_probe=False)
        _emit(doc, as_json, render_plan(doc))
        sys.exit(EXIT_OK)
    doc = run_copy(source, target, kwargs, quiet=quiet, as_json=as_json, listener=_file_log(verbose))
    _say_failures(doc, as_json)
    _emit(doc, as_json, render_copy(doc), quiet=quiet and copy_exit_code(doc) == EXIT_OK)
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
@click.argument("dst", required=False)
@target_options
@options("transfers", "chunk-size", *JOURNAL)
@click.option("--download", is_flag=True, help="Read every object back and hash its bytes (the strongest check).")
@output_options
@guarded
def verify_command(src, dst, download, as_json, quiet, verbose, **kwargs):
    """Compare every file under SRC with its object under DST: missing, different, extra. Exit 3 if not clean.

    Without DST, the destination the deployment file names (--env-file, --compose, --values).

    \b
    Examples:
      lsmigrate verify /label-studio/data s3://my-bucket/ls-media
      lsmigrate verify /label-studio/data --env-file env.list --json
      lsmigrate verify ./mydata gs://my-bucket/media --download
    """
    _setup_logging(verbose)
    source = replace(source_from_path(src), include_legacy_export=kwargs["include_legacy_export"],
                                            copy_links=kwargs.get("copy_links", False))
    doc = run_verify(source, _target(kwargs, dst), kwargs, download=download)
    if not as_json and doc["problems"]:  # one line per file found wanting, on stderr as copy's failures
        click.echo(render_verify(doc, summary=False), err=True)
    _emit(doc, as_json, render_verify(doc, problems=False), quiet=quiet and doc["clean"] and not doc["fatal"])
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
    try:
        answer = click.confirm(question, default=False, err=True)
    except click.Abort:  # Ctrl-C or end of input at the prompt
        click.echo("", err=True)
        fail("interrupted at the prompt: not switched, nothing was changed", EXIT_INTERRUPTED)
    if not answer:
        fail("not switched, as answered; nothing was changed", EXIT_FAILED)


def move_option(func):
    func = click.option("--allow-empty", is_flag=True, help=(
        "Switch even when the data dir holds no file at all (a deployment with nothing uploaded yet); without "
        "it an empty tree is refused, since it usually means a wrong --data-dir or an unmounted disk."))(func)
    return click.option("--move-from-current", "move", is_flag=True, help=(
        "The file already points Label Studio at a bucket: switch it to another one on purpose. What must then "
        "be copied and verified at the new destination is every object at the current one (not the data "
        "dir)."))(func)


def empty_tree(source: Source | None, checked: dict, kwargs) -> str | None:
    """Why a switch over a data dir with no file at all is refused (None when it is not)."""
    if source is None or checked.get("planned") or kwargs.get("allow_empty"):
        return None
    return (f"no file at all under {source.root}: is --data-dir right (Label Studio keeps uploads in "
            "<data dir>/media), and is its disk mounted? Nothing was switched. A deployment with nothing "
            "uploaded yet needs no copy: pass --allow-empty to switch it anyway")


def current_to_move(kwargs, target, *, move: bool):
    """Where the file points Label Studio now, when switching to `target` would leave it; refused (exit 2)
    unless --move-from-current, because every file stored there would stop being served."""
    from .jobs import differences, live_target

    name = kwargs.get("env_file") or kwargs.get("compose") or kwargs.get("values")
    if not name:
        return None
    current = live_target(env_file=kwargs.get("env_file"), compose=kwargs.get("compose"),
                          compose_service=kwargs.get("compose_service"), values=kwargs.get("values"),
                          endpoint_url=kwargs.get("endpoint_url"))
    changed = differences(current, target) if current else []
    if changed and not move:
        fail(f"{name} already points Label Studio at {_describe(current)}; switching it to {_describe(target)} "
             f"({'; '.join(changed)}) would stop Label Studio serving every file stored there. Nothing was "
             f"changed. To move on purpose, pass --move-from-current: then every object at {current.url} (not the "
             f"data dir) must be verified at {target.url} before the switch, and local-to-* copies them there "
             "first (sync)")
    if move and current is None:
        fail(f"--move-from-current: {name} does not point Label Studio at a bucket yet, so there is nothing to "
             "move from; run without it")
    if move and not changed:
        click.echo(f"{name} already points Label Studio at {_describe(target)}; nothing to move.", err=True)
        sys.exit(EXIT_OK)
    return current if changed else None


def run_gate(source: Source | None, target, kwargs, *, current=None, download: bool = False) -> dict:
    """What must be verified at the destination before a switch: the data dir's files, or when moving,
    every object at the current destination."""
    if current is None:
        return run_verify(source, target, kwargs, download=download)
    from .move import verify_objects

    report = verify_objects(current, target, settings=settings_from(kwargs), state=kwargs.get("state"))
    return verify_document(report, source=_describe(current), destination=_describe(target))


def run_move(current, target, kwargs, *, quiet: bool, as_json: bool) -> dict:
    """The copy step of a move: `sync` from the current destination."""
    from .move import copy_objects

    progress = Progress(enabled=None if not (quiet or as_json) else False, label="move")
    try:
        outcome = copy_objects(current, target, settings=settings_from(kwargs), state=kwargs.get("state"),
                               progress=progress)
    finally:
        progress.close()
    return copy_document(outcome.stats, source=_describe(current), destination=_describe(target))


def run_cutover(source: Source | None, target, kwargs, *, dry_run: bool, yes: bool, no_nginx: bool,
                as_json: bool, quiet: bool, current=None) -> dict:
    from . import backups, cutover
    from .jobs import deployment_settings

    settings = deployment_settings(env_file=kwargs.get("env_file"), compose=kwargs.get("compose"),
                                   compose_service=kwargs.get("compose_service"))
    edit = cutover.prepare(target, settings, env_file=kwargs.get("env_file"), compose=kwargs.get("compose"),
                           compose_service=kwargs.get("compose_service"), values=kwargs.get("values"),
                           no_nginx=no_nginx)
    checked = run_gate(source, target, kwargs, current=current)
    doc = {"file": str(edit.path), "destination": _describe(target), "verify": checked, "diff": edit.diff(),
           "switched": False, "backup": None, "next_steps": []}
    if current is not None:
        doc["moving_from"] = _describe(current)
    if checked["fatal"] or not checked["clean"]:
        if not as_json:
            click.echo(render_verify(checked), err=True)
        counts = checked["counts"]
        missing = (counts.get("missing", 0) + counts.get("different", 0) + counts.get("unchecked", 0)
                   + counts.get("error", 0) + checked["unaccounted"])
        if current is None:
            what = source.root
            hint = f"`lsmigrate copy {source.data_dir.base if source.data_dir else source.root} {_same_place(kwargs, target)}`"
        else:  # local-to-* copies them with sync, reading both ends from the file's own settings
            what = current.url
            hint = f"`lsmigrate local-to-{target.provider} --move-from-current` with the same options"
        doc["refused"] = (f"{missing} file(s) of {what} are not verified at {target.url}; "
                          f"not switching. Copy them first ({hint}), then run cutover again")
        return doc
    doc["refused"] = empty_tree(source if current is None else None, checked, kwargs)
    if doc["refused"]:
        doc["exit"] = EXIT_USAGE
        return doc
    del doc["refused"]
    if not edit.changed:
        doc["next_steps"] = ["The file already points at this destination; nothing to change."]
        return doc
    if dry_run:
        return doc
    if not as_json and not quiet:
        click.echo(edit.diff(), err=True)
    confirm_or_refuse(f"Switch {edit.path} to {target.url}?", yes)
    doc["backup"] = str(backups.write_with_backup(edit.path, edit.new_text))
    doc["switched"] = True
    doc["next_steps"] = cutover.next_steps(edit, target)
    return doc


def _same_place(kwargs, target) -> str:
    """The options that name this destination again, for a command the operator is told to run next."""
    from .endpoints import public

    for option, key in (("--env-file", "env_file"), ("--compose", "compose"), ("--values", "values")):
        if kwargs.get(key):
            return f"{option} {kwargs[key]}" + (f" --to {target.url}" if kwargs.get("to") else "")
    endpoint = f" --endpoint-url {public(target.endpoint_url)}" if target.endpoint_url else ""
    return f"{target.url}{endpoint}"


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
        return doc.get("exit", EXIT_VERIFY)
    return EXIT_OK


@main.command(name="cutover")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Label Studio's base data dir: the files that must be verified.")
@click.option("--to", "to", help="Destination URL, if the file does not name it yet.")
@target_options
@options(*JOURNAL)
@click.option("--dry-run", is_flag=True, help="Check and print the diff; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Switch without asking.")
@click.option("--no-nginx", is_flag=True, help="Also set USE_NGINX_FOR_UPLOADS/USE_NGINX_FOR_EXPORT_DOWNLOADS=false.")
@click.option("--rollback", is_flag=True, help="Undo the newest recorded switch of the file, byte for byte; run "
              "again to step back further, to the original.")
@click.option("--list", "list_switches", is_flag=True, help="With --rollback: list the recorded switches, newest "
              "first (time, backup, what each changed); change nothing.")
@click.option("--force", is_flag=True, help="With --rollback: roll back even over lines edited since the switch.")
@move_option
@output_options
@guarded
def cutover_command(data_dir, to, dry_run, yes, no_nginx, rollback, list_switches, force, move, as_json, quiet,
                    verbose, **kwargs):
    """Switch STORAGE_TYPE in an env.list, compose file or Helm values, once every file is verified.

    Refuses while any file of the data dir is missing or different at the destination. Writes a
    timestamped backup next to the file and replaces it atomically; --rollback undoes one switch per run,
    back to the original. A file that already points Label Studio at another bucket, folder or endpoint is
    not re-pointed (exit 2) unless --move-from-current, which verifies every object at the current
    destination instead of the data dir.

    \b
    Examples:
      lsmigrate cutover --data-dir /label-studio/data --env-file env.list --to s3://my-bucket/ls-media --dry-run
      lsmigrate cutover --data-dir /label-studio/data --values ls-values.yaml --to gs://my-bucket/media --yes
      lsmigrate cutover --rollback --env-file env.list
      lsmigrate cutover --rollback --list --env-file env.list
    """
    _setup_logging(verbose)
    if (list_switches or force) and not rollback:
        fail("--list and --force go with --rollback")
    if rollback:
        from . import backups

        files = [f for f in (kwargs.get("env_file"), kwargs.get("compose"), kwargs.get("values")) if f]
        if len(files) != 1:
            fail("--rollback takes exactly one of --env-file, --compose or --values")
        if list_switches:
            doc = backups.listing(files[0])
            _emit(doc, as_json, backups.render_listing(doc))
        else:
            done = backups.roll_back(files[0], force=force)
            _emit(backups.rollback_document(done, files[0]), as_json, backups.render_rollback(done, files[0]),
                  quiet=quiet)
        sys.exit(EXIT_OK)
    source = None if move else replace(source_from_data_dir(data_dir),
                                       include_legacy_export=kwargs["include_legacy_export"],
                                       copy_links=kwargs.get("copy_links", False))
    target = _target(kwargs, to)
    current = current_to_move(kwargs, target, move=move)
    doc = run_cutover(source, target, kwargs, dry_run=dry_run, yes=yes, no_nginx=no_nginx, as_json=as_json,
                      quiet=quiet, current=current)
    _emit(doc, as_json, render_cutover(doc, dry_run=dry_run), quiet=quiet and not doc.get("refused"))
    sys.exit(cutover_exit(doc))


def _local_to_steps(result: dict, source: Source | None, target, kwargs, *, download: bool, yes: bool,
                    no_nginx: bool, no_cutover: bool, as_json: bool, quiet: bool, current=None) -> int:
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
    result["verify"] = checked = run_gate(source, target, kwargs, current=current, download=download)
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
                                               as_json=as_json, quiet=quiet, current=current)
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

    \b
    Examples:
      lsmigrate sync s3://ls-media/media gs://ls-media-replica/media --delete --max-delete 1000 -q
      lsmigrate sync /label-studio/data s3://my-bucket/ls-media --json-log /var/log/lsmigrate/sync.jsonl
      lsmigrate sync s3://ls-media/media az://replica/media --src-endpoint-url http://minio:9000 --include 'upload/*'
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
        source = replace(source_from_path(src), include_legacy_export=kwargs["include_legacy_export"],
                                                copy_links=kwargs.get("copy_links", False))
        entries, origin, label = local_files(source), LocalOrigin(), str(source.root)
    else:
        source_store = open_store(source_target, transfers=settings.transfers, retries=settings.retries)
        source_store.check()
        entries, origin = source_store.list(), StoreOrigin(source_store)
        label = destination_label(source_target)
    log = JsonLog(json_log)
    per_file = _file_log(verbose)
    if per_file is not None:  # run_sync hands log.result to the engine as its listener: -v hears it too
        json_result = log.result

        def both(result) -> None:
            json_result(result)
            per_file(result)

        log.result = both
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
    text = (f"{_describe(source_target) if source_target else label} -> {_describe(dest_target)}\n"
            + render_copy(doc) + f"\ndeleted {outcome.deleted:,}") + (
        f"; {outcome.delete_refused}" if outcome.delete_refused else "")
    basis = ", ".join(f"{n:,} by {how}" for how, n in sorted(outcome.bases.items()))
    if basis:
        text += f"\ncompared {basis}"
    failed = doc["failed"] or doc["unaccounted"] or outcome.delete_refused or outcome.delete_failures
    _say_failures(doc, as_json)
    _emit(doc, as_json, text, quiet=quiet and not (failed or doc["fatal"]))
    if doc["fatal"]:
        fail(doc["fatal"])
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


# doctor ----------------------------------------------------------------------------------------------
def run_doctor(target, kwargs, *, apply_cors: bool) -> dict:
    """The checks `doctor` prints and `local-to-*` runs before copying: one function, one set of severities."""
    from . import doctor

    return doctor.preflight(target, retries=kwargs.get("retries", 2), apply_cors=apply_cors)


def render_doctor(doc: dict) -> str:
    from . import doctor

    return doctor.render(doc)


def apply_cors_option(func):
    return click.option("--apply-cors", is_flag=True, help=(
        "Set the CORS rule from Label Studio's persistent storage guide when the bucket has none (on Azure: "
        "on the storage account). Browsers need it for direct uploads and for the audio, video and CSV files "
        "Label Studio fetches from the bucket; the copy does not."))(func)


@main.command(name="doctor")
@click.option("--to", "to", help="Destination URL (default: from the deployment's settings).")
@target_options
@click.option("--retries", type=click.IntRange(0, 50), default=2, show_default=True, help="Retries per request.")
@apply_cors_option
@output_options
@guarded
def doctor_command(to, apply_cors, as_json, quiet, verbose, **kwargs):
    """Preflight: endpoint, credentials, bucket, list/put/get/delete under the folder, CORS, encryption.

    Prints a checklist with the fix for each check that is not passed, and the least-privilege policy.
    Exit 2 when a check fails; a warning (no CORS rule, say) does not stop a copy and exits 0. local-to-*
    runs these same checks first.

    \b
    Examples:
      lsmigrate doctor --to s3://my-bucket/ls-media
      lsmigrate doctor --env-file env.list --apply-cors
      lsmigrate doctor --to gs://my-bucket/media --endpoint-url http://localhost:4443 --json
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
    @options(*(TARGET if provider == "s3" else [name for name in TARGET if name != "region"]), provider=provider)
    @options(*TRANSFER, *JOURNAL, provider=provider)
    @no_traverse_option
    @click.option("--download", is_flag=True, help="Verify by reading every object back.")
    @click.option("--yes", "-y", is_flag=True, help="Switch the deployment file without asking.")
    @click.option("--no-nginx", is_flag=True, help="At the switch, also set USE_NGINX_FOR_UPLOADS/..._EXPORT_DOWNLOADS=false.")
    @click.option("--no-cutover", is_flag=True, help="Copy and verify only; leave the deployment file alone.")
    @apply_cors_option
    @move_option
    @output_options
    @guarded
    def command(data_dir, to, download, yes, no_nginx, no_cutover, apply_cors, move, as_json, quiet, verbose,
                **kwargs):
        from . import doctor

        _setup_logging(verbose)
        switching = not no_cutover and any(kwargs.get(k) for k in ("env_file", "compose", "values"))
        if move and (not switching or download):
            fail("--move-from-current switches a deployment file: pass --env-file, --compose or --values, "
                 "without --no-cutover or --download")
        source = None if move else replace(source_from_data_dir(data_dir),
                                           include_legacy_export=kwargs["include_legacy_export"],
                                           copy_links=kwargs.get("copy_links", False))
        target = _target(kwargs, to, provider)
        current = current_to_move(kwargs, target, move=move) if switching else None  # before anything is sent
        started = time.monotonic()
        checked = run_doctor(target, kwargs, apply_cors=apply_cors)
        warnings = [] if as_json or quiet else doctor.warning_lines(checked)
        if not checked["ok"]:
            if as_json:
                _emit({"doctor": checked}, True, "")
            else:
                click.echo(render_doctor(checked), err=True)
            first = next(c for c in checked["checks"] if c["status"] == "fail")
            fail(f"preflight failed: {first['name']}: {first['detail']}")
        for line in warnings:
            click.echo(line, err=True)
        if not as_json and not quiet:
            click.echo(f"Copying {_describe(current) if current else source.root} -> {_describe(target)}", err=True)
        copied = (run_move(current, target, kwargs, quiet=quiet, as_json=as_json) if current
                  else run_copy(source, target, kwargs, quiet=quiet, as_json=as_json, listener=_file_log(verbose)))
        result = {"doctor": checked, "copy": copied, "verify": None, "cutover": None}
        code = _local_to_steps(result, source, target, kwargs, download=download, yes=yes, no_nginx=no_nginx,
                               no_cutover=no_cutover, as_json=as_json, quiet=quiet, current=current)
        result["seconds"] = round(time.monotonic() - started, 3)
        text = [render_copy(result["copy"])]
        if result["verify"]:
            text.append(render_verify(result["verify"]))
        if result["cutover"]:
            text.append(render_cutover(result["cutover"], dry_run=False))
        done = quiet and code == EXIT_OK  # -q: nothing at all on success
        _say_failures(result["copy"], as_json)
        _emit(result, as_json, "\n".join(t for t in text if t), quiet=done)
        for line in [] if done else [*warnings, *result.get("messages", [])]:  # the warnings again, where the end of a long run is read
            click.echo(line, err=True)
        sys.exit(code)

    name = {"s3": "S3", "gcs": "GCS", "azure": "Azure"}[provider]
    bucket = "container" if provider == "azure" else "bucket"
    examples = {
        "s3": ["--data-dir /label-studio/data --env-file env.list",
               "--data-dir ./mydata --to s3://my-bucket/ls-media --no-cutover",
               "--data-dir ./mydata --values ls-values.yaml --to s3://my-bucket/media --yes"],
        "gcs": ["--data-dir /label-studio/data --env-file env.list",
                "--data-dir ./mydata --to gs://my-bucket/ls-media --no-cutover",
                "--data-dir ./mydata --compose docker-compose.yml --to gs://my-bucket/media --apply-cors --yes"],
        "azure": ["--data-dir /label-studio/data --env-file env.list",
                  "--data-dir ./mydata --to az://my-container/ls-media --no-cutover",
                  "--data-dir ./mydata --values ls-values.yaml --to az://my-container/media --yes"],
    }[provider]
    command.__doc__ = (f"Copy a Label Studio data dir's media to {name}, verify every file, then switch.\n\n"
                       "First the checks of `lsmigrate doctor`: a failed one stops here, a warning (no CORS rule)\n"
                       "is printed and the copy goes on. The target comes from --to, or from the deployment's own\n"
                       "settings (--env-file, --compose, --values, or the environment), exactly as Label Studio\n"
                       f"reads them. With one of those files given, it is switched to the {bucket} (asking first,\n"
                       "unless --yes) once all is verified.\n\n\b\nExamples:\n"
                       + "".join(f"  lsmigrate local-to-{provider} {example}\n" for example in examples))
    return command


main.command(name="local-to-s3")(local_to("s3"))
main.command(name="local-to-gcs")(local_to("gcs"))
main.command(name="local-to-azure")(local_to("azure"))


if __name__ == "__main__":  # pragma: no cover
    main()
