"""`plan`, `copy` and `verify`: parse, call the workflow, print, exit code."""

from __future__ import annotations

import sys

import click

from ..report import render_copy, render_plan, render_verify
from ..workflow.copy import run_copy, run_verify
from ..workflow.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_VERIFY
from ..workflow.plan import run_plan
from .group import main
from .guard import guarded
from .options import (
    JOURNAL,
    SIZE,
    no_traverse_option,
    options,
    output_options,
    run_options,
    source_from,
    target_from,
    target_options,
    transfer_options,
)
from .output import copy_exit_code, emit, fail, file_log, say_failures, setup_logging

COPY_DRY_RUN_THROUGHPUT = 50 * 1024 * 1024  # plan's --assume-throughput default, for `copy --dry-run`


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
    setup_logging(verbose)
    source = source_from(kwargs, path=src, data_dir=data_dir)
    target = target_from(kwargs, dst or to)
    doc = run_plan(source, target, run_options(kwargs), assume_throughput=assume_throughput,
                   assume_files=assume_files_per_second, do_probe=do_probe)
    emit(doc, as_json, render_plan(doc))
    sys.exit(EXIT_FAILED if any(p["error"] for p in doc["problems"]) else EXIT_OK)


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
    setup_logging(verbose)
    source = source_from(kwargs, path=src)
    target = target_from(kwargs, dst)
    if dry_run:
        doc = run_plan(source, target, run_options(kwargs), assume_throughput=COPY_DRY_RUN_THROUGHPUT,
                       assume_files=100.0, do_probe=False)
        emit(doc, as_json, render_plan(doc))
        sys.exit(EXIT_OK)
    doc = run_copy(source, target, run_options(kwargs, quiet=quiet, as_json=as_json, listener=file_log(verbose)))
    say_failures(doc, as_json)
    emit(doc, as_json, render_copy(doc), quiet=quiet and copy_exit_code(doc) == EXIT_OK)
    if doc["fatal"]:
        click.echo(f"lsmigrate: error: {doc['fatal']}", err=True)
    sys.exit(copy_exit_code(doc))


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
    setup_logging(verbose)
    source = source_from(kwargs, path=src)
    doc = run_verify(source, target_from(kwargs, dst), run_options(kwargs), download=download)
    if not as_json and doc["problems"]:  # one line per file found wanting, on stderr as copy's failures
        click.echo(render_verify(doc, summary=False), err=True)
    emit(doc, as_json, render_verify(doc, problems=False), quiet=quiet and doc["clean"] and not doc["fatal"])
    if doc["fatal"]:
        fail(doc["fatal"])
    sys.exit(EXIT_OK if doc["clean"] else EXIT_VERIFY)
