"""`doctor`: parse, call the workflow, print, exit code."""

from __future__ import annotations

import sys

import click

from ..workflow.doctor import run_doctor
from ..workflow.exit_codes import EXIT_OK, EXIT_USAGE
from .group import main
from .guard import guarded
from .options import apply_cors_option, output_options, settings_from, target_from, target_options
from .output import emit, render_doctor, setup_logging


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
    setup_logging(verbose)
    target = target_from(kwargs, to)
    doc = run_doctor(target, retries=settings_from(kwargs).retries, apply_cors=apply_cors)
    emit(doc, as_json, render_doctor(doc))
    sys.exit(EXIT_OK if doc["ok"] else EXIT_USAGE)
