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
from .engine import Engine, Settings
from .estimate import estimate, probe
from .jobs import Source, local_files, open_job, resolve_target, source_from_data_dir, source_from_path
from .journal import JournalError
from .labelstudio import NotADataDir
from .plan import Do, Summary
from .report import (
    Progress,
    copy_document,
    plan_document,
    render_copy,
    render_plan,
    render_verify,
    verify_document,
)
from .scan import LocalFile, scan_local
from .units import format_size, parse_size
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
    click.echo(f"lsmigrate: error: {message}", err=True)
    sys.exit(code)


def guarded(func):
    """One clear line and the right exit code for every known failure; never a traceback for bad input."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
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
        click.option("--retries", type=click.IntRange(0, 50), default=5, show_default=True, help="Retries per request and per file."),
        click.option("--include-legacy-export", is_flag=True, help="Also copy the data dir's legacy export/ folder (to legacy-export/)."),
    ]):
        func = option(func)
    return func


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
                    multipart_threshold=max(kwargs["multipart_threshold"], 1), retries=kwargs["retries"])


def _target(kwargs, url: str | None, provider: str | None = None):
    return resolve_target(url=url, env_file=kwargs.get("env_file"), compose=kwargs.get("compose"),
                          compose_service=kwargs.get("compose_service"), values=kwargs.get("values"),
                          endpoint_url=kwargs.get("endpoint_url"), region=kwargs.get("region"), provider=provider)


def _describe(target) -> str:
    return target.url + (f" (endpoint {target.endpoint_url})" if target.endpoint_url else "")


def _setup_logging(verbose: int) -> None:
    if verbose >= 2:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")


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
        for action in job.actions():
            summary.add(action)
            if action.do is Do.CHECK:  # dry run: compare now, write nothing
                from .compare import compare

                result = compare(action.local, action.remote, job.store, chunk_size=settings.chunk_size)
                summary.settle(action.local.size, bool(result.same))
        rates = probe(job.store, settings) if do_probe else None
    legacy = None
    if source.data_dir and source.data_dir.legacy_export.is_dir():
        files = [e for e in scan_local(source.data_dir.legacy_export) if isinstance(e, LocalFile)]
        legacy = {"files": len(files), "bytes": sum(f.size for f in files), "included": source.include_legacy_export}
    est = estimate(summary.to_copy.files, summary.to_copy.bytes, bytes_per_second=assume_throughput,
                   files_per_second=assume_files, measured=rates)
    label = f"{source.root}" + (f" (Label Studio data dir {source.data_dir.base})" if source.data_dir else "")
    return plan_document(summary, source=label, destination=_describe(target), chunk_size=settings.chunk_size,
                         estimate=est, legacy=legacy)


@main.command()
@click.argument("src", required=False)
@click.argument("dst", required=False)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Label Studio's base data dir (default: as Label Studio finds it).")
@click.option("--to", "to", help="Destination URL: s3://bucket/folder, gs://bucket/folder, az://container/folder.")
@target_options
@transfer_options
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
                      retries=settings.retries) as job:
            stats = Engine(job.store, job.journal, settings, progress).run(job.actions())
    finally:
        progress.close()
    return copy_document(stats, source=str(source.root), destination=_describe(target))


def copy_exit_code(doc: dict) -> int:
    if doc["fatal"]:
        return EXIT_USAGE
    return EXIT_FAILED if doc["failed"] else EXIT_OK


@main.command()
@click.argument("src")
@click.argument("dst")
@target_options
@transfer_options
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


# local-to-* --------------------------------------------------------------------------------------------
def local_to(provider: str):
    scheme = {"s3": "s3://bucket/folder", "gcs": "gs://bucket/folder", "azure": "az://container/folder"}[provider]

    @click.option("--data-dir", type=click.Path(file_okay=False), help="Label Studio's base data dir (default: as Label Studio finds it).")
    @click.option("--to", "to", help=f"Destination URL ({scheme}); default: from the deployment's settings.")
    @target_options
    @transfer_options
    @click.option("--download", is_flag=True, help="Verify by reading every object back.")
    @output_options
    @guarded
    def command(data_dir, to, download, as_json, quiet, verbose, **kwargs):
        _setup_logging(verbose)
        source = replace(source_from_data_dir(data_dir), include_legacy_export=kwargs["include_legacy_export"])
        target = _target(kwargs, to, provider)
        for note in target.notes:
            click.echo(f"note: {note}", err=True)
        if not as_json and not quiet:
            click.echo(f"Copying {source.root} -> {_describe(target)}", err=True)
        started = time.monotonic()
        copied = run_copy(source, target, kwargs, quiet=quiet, as_json=as_json)
        result = {"copy": copied, "verify": None}
        if not copied["fatal"] and not copied["failed"]:
            result["verify"] = run_verify(source, target, kwargs, download=download)
        result["seconds"] = round(time.monotonic() - started, 3)
        text = render_copy(copied) + ("\n" + render_verify(result["verify"]) if result["verify"] else "")
        _emit(result, as_json, text)
        if copied["fatal"]:
            fail(copied["fatal"])
        if copied["failed"]:
            sys.exit(EXIT_FAILED)
        if result["verify"]["fatal"]:
            fail(result["verify"]["fatal"])
        if not result["verify"]["clean"]:
            sys.exit(EXIT_VERIFY)
        if not as_json and not quiet:
            click.echo(f"All {format_size(copied['copied_bytes'])} copied and every file verified at {target.url}.", err=True)
        sys.exit(EXIT_OK)

    command.__doc__ = (f"Copy a Label Studio data dir's media to {provider.upper()} and verify every file.\n\n"
                       "The target comes from --to, or from the deployment's own settings (--env-file, --compose,\n"
                       f"--values, or the environment), exactly as Label Studio reads them.")
    return command


main.command(name="local-to-s3")(local_to("s3"))
main.command(name="local-to-gcs")(local_to("gcs"))
main.command(name="local-to-azure")(local_to("azure"))


if __name__ == "__main__":  # pragma: no cover
    main()
