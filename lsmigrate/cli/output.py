"""What the CLI prints: one-line errors, the document (--json) or its text, per-file lines (-v), the
libraries' debug log (-vv)."""

from __future__ import annotations

import json
import sys

import click

from ..outcome import Outcome
from ..report import Progress, render_verify, shown
from ..workflow.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE, EXIT_VERIFY


def error_line(message: str) -> str:
    """`lsmigrate: error: <message>` on one line, secrets masked and control characters escaped."""
    from ..redact import scrub

    return f"lsmigrate: error: {shown(scrub(' '.join(str(message).split())))}"


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(error_line(message), err=True)
    sys.exit(code)


def emit(doc: dict, as_json: bool, text: str, *, quiet: bool = False) -> None:
    """The document (--json), else the text unless `quiet` (-q on success)."""
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif not quiet:
        click.echo(text)


def say_failures(doc: dict, as_json: bool) -> None:
    """Per-file failures of a copy go to stderr (with --json they are in the document)."""
    from ..report import render_failures

    lines = render_failures(doc)
    if lines and not as_json:
        click.echo(lines, err=True)


def file_log(verbose: int):
    """-v: the engine's listener printing one line per file to stderr, rclone-style: outcome, basis, name."""
    if verbose < 1:
        return None
    from tqdm import tqdm

    def line(result) -> None:
        why = f": {shown(result.reason)}" if result.reason and result.outcome in (Outcome.FAILED, Outcome.PROBLEM) else ""
        # tqdm.write keeps the lines clear of the progress bars (it prints plainly when there are none).
        tqdm.write(f"{result.outcome.value:<9} {result.basis or '-':<14} {shown(result.rel)}{why}", file=sys.stderr)

    return line


def progress_bars(label: str) -> Progress:
    """Two tqdm bars for one transfer, when stderr is a terminal."""
    return Progress(enabled=None, label=label)


def setup_logging(verbose: int) -> None:
    if verbose >= 2:
        import logging
        import os

        from .. import redact

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
        redact.install(os.environ)  # botocore and the SDKs log headers, tokens and request parameters at DEBUG


def copy_exit_code(doc: dict) -> int:
    if doc["fatal"]:
        return EXIT_USAGE
    return EXIT_FAILED if doc["failed"] or doc.get("unaccounted") else EXIT_OK


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


def say_unverified(doc: dict, as_json: bool) -> None:
    """A switch refused for files not verified: which ones, on stderr (with --json they are in the document)."""
    checked = doc["verify"]
    if (checked["fatal"] or not checked["clean"]) and not as_json:
        click.echo(render_verify(checked), err=True)


def cutover_exit(doc: dict) -> int:
    if doc.get("refused"):
        click.echo(f"lsmigrate: error: {doc['refused']}", err=True)
        return doc.get("exit", EXIT_VERIFY)
    return EXIT_OK


def render_doctor(doc: dict) -> str:
    from .. import doctor

    return doctor.render(doc)
