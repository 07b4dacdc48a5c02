"""`sync`: parse, call the workflow, print, exit code."""

from __future__ import annotations

import sys

import click

from ..report import render_copy
from ..workflow.exit_codes import EXIT_FAILED, EXIT_OK
from ..workflow.sync import SyncRequest, run_sync
from .group import main
from .guard import guarded
from .options import output_options, run_options, transfer_options
from .output import emit, fail, file_log, say_failures, setup_logging


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
    setup_logging(verbose)
    request = SyncRequest(src, dst, src_endpoint_url=src_endpoint_url, dst_endpoint_url=dst_endpoint_url,
                          delete=delete, max_delete=max_delete, include=tuple(include), exclude=tuple(exclude),
                          json_log=json_log, include_legacy_export=kwargs["include_legacy_export"],
                          copy_links=kwargs.get("copy_links", False))
    synced = run_sync(request, run_options(kwargs, quiet=quiet, as_json=as_json, listener=file_log(verbose)))
    doc = synced.doc
    failed = doc["failed"] or doc["unaccounted"] or doc["delete_refused"] or doc["delete_failures"]
    say_failures(doc, as_json)
    emit(doc, as_json, render_sync(synced.route, doc), quiet=quiet and not (failed or doc["fatal"]))
    if doc["fatal"]:
        fail(doc["fatal"])
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def render_sync(route: str, doc: dict) -> str:
    text = (f"{route}\n" + render_copy(doc) + f"\ndeleted {doc['deleted']:,}") + (
        f"; {doc['delete_refused']}" if doc["delete_refused"] else "")
    basis = ", ".join(f"{n:,} by {how}" for how, n in sorted(doc["compared_by"].items()))
    if basis:
        text += f"\ncompared {basis}"
    return text
