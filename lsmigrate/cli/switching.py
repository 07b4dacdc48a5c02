"""`cutover` and `local-to-s3/gcs/azure`: parse, call the workflow, print, ask before a switch, exit code."""

from __future__ import annotations

import sys
import time

import click

from ..checks import FAIL
from ..deployment.kinds import given
from ..deployment.kinds import options as file_options
from ..jobs import describe
from ..report import render_copy, render_verify
from ..stores.registry import PROVIDERS, record_for
from ..workflow.cutover import current_to_move, run_cutover
from ..workflow.doctor import run_doctor
from ..workflow.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, EXIT_VERIFY
from ..workflow.local_to import run_local_to
from .group import main
from .guard import guarded
from .options import (
    JOURNAL,
    TRANSFER,
    apply_cors_option,
    move_option,
    no_traverse_option,
    options,
    output_options,
    run_options,
    source_from,
    target_from,
    target_option_names,
    target_options,
)
from .output import (
    cutover_exit,
    emit,
    fail,
    file_log,
    render_cutover,
    render_doctor,
    say_failures,
    say_unverified,
    setup_logging,
)


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


def approver(*, yes: bool, as_json: bool, quiet: bool):
    """What a switch calls before writing the file: the diff on stderr, then the question (or --yes)."""

    def approve(edit, target) -> None:
        if not as_json and not quiet:
            click.echo(edit.diff(), err=True)
        confirm_or_refuse(f"Switch {edit.path} to {target.url}?", yes)

    return approve


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
    setup_logging(verbose)
    if (list_switches or force) and not rollback:
        fail("--list and --force go with --rollback")
    if rollback:
        roll_back(kwargs, list_switches=list_switches, force=force, as_json=as_json, quiet=quiet)
    source = None if move else source_from(kwargs, data_dir=data_dir)
    target = target_from(kwargs, to)
    opts = run_options(kwargs)
    current = current_to_move(opts, target, move=move)
    doc = run_cutover(source, target, opts, dry_run=dry_run, no_nginx=no_nginx, current=current,
                      approve=approver(yes=yes, as_json=as_json, quiet=quiet))
    say_unverified(doc, as_json)
    emit(doc, as_json, render_cutover(doc, dry_run=dry_run), quiet=quiet and not doc.get("refused"))
    sys.exit(cutover_exit(doc))


def roll_back(kwargs, *, list_switches: bool, force: bool, as_json: bool, quiet: bool) -> None:
    """cutover --rollback [--list]: one step back, or the recorded switches; exits."""
    from ..deployment import backups

    files = [path for _, path in given(**kwargs)]
    if len(files) != 1:
        fail(f"--rollback takes exactly one of {file_options()}")
    if list_switches:
        doc = backups.listing(files[0])
        emit(doc, as_json, backups.render_listing(doc))
    else:
        done = backups.roll_back(files[0], force=force)
        emit(backups.rollback_document(done, files[0]), as_json, backups.render_rollback(done, files[0]),
             quiet=quiet)
    sys.exit(EXIT_OK)


# local-to-* --------------------------------------------------------------------------------------------
def local_to_exit(result: dict) -> int:
    """The exit code of the first step that was not clean (a refused switch's line goes to stderr here)."""
    copied, checked = result["copy"], result["verify"]
    if copied["fatal"]:
        return EXIT_USAGE
    if copied["failed"] or copied["unaccounted"]:
        return EXIT_FAILED
    if checked["fatal"]:
        return EXIT_USAGE
    if not checked["clean"]:
        return EXIT_VERIFY
    return cutover_exit(result["cutover"]) if result["cutover"] else EXIT_OK


def preflight(target, opts, *, apply_cors: bool, as_json: bool, quiet: bool) -> tuple[dict, list[str]]:
    """doctor's checks before anything is sent: a failed one stops here (exit 2); returns the document
    and its warning lines (none with --json or -q), which are printed before the copy and again at the end."""
    from .. import doctor

    checked = run_doctor(target, retries=opts.settings.retries, apply_cors=apply_cors)
    warnings = [] if as_json or quiet else doctor.warning_lines(checked)
    if not checked["ok"]:
        if as_json:
            emit({"doctor": checked}, True, "")
        else:
            click.echo(render_doctor(checked), err=True)
        first = next(c for c in checked["checks"] if c["status"] == FAIL)
        fail(f"preflight failed: {first['name']}: {first['detail']}")
    return checked, warnings


def run_local_to_command(provider: str, *, data_dir, to, download, yes, no_nginx, no_cutover, apply_cors, move,
                         as_json, quiet, verbose, kwargs) -> None:
    setup_logging(verbose)
    switching = not no_cutover and bool(given(**kwargs))
    if move and (not switching or download):
        fail(f"--move-from-current switches a deployment file: pass {file_options()}, "
             "without --no-cutover or --download")
    source = None if move else source_from(kwargs, data_dir=data_dir)
    target = target_from(kwargs, to, provider)
    opts = run_options(kwargs, quiet=quiet, as_json=as_json, listener=file_log(verbose))
    current = current_to_move(opts, target, move=move) if switching else None  # before anything is sent
    started = time.monotonic()
    checked, warnings = preflight(target, opts, apply_cors=apply_cors, as_json=as_json, quiet=quiet)
    for line in warnings:
        click.echo(line, err=True)
    if not as_json and not quiet:
        click.echo(f"Copying {describe(current) if current else source.root} -> {describe(target)}", err=True)
    steps = run_local_to(source, target, opts, current=current, download=download, no_cutover=no_cutover,
                         no_nginx=no_nginx, approve=approver(yes=yes, as_json=as_json, quiet=quiet))
    result = {"doctor": checked, **steps}
    if result["cutover"]:
        say_unverified(result["cutover"], as_json)
    code = local_to_exit(result)
    result["seconds"] = round(time.monotonic() - started, 3)
    text = [render_copy(result["copy"])]
    if result["verify"]:
        text.append(render_verify(result["verify"]))
    if result["cutover"]:
        text.append(render_cutover(result["cutover"], dry_run=False))
    done = quiet and code == EXIT_OK  # -q: nothing at all on success
    say_failures(result["copy"], as_json)
    emit(result, as_json, "\n".join(t for t in text if t), quiet=done)
    for line in [] if done else [*warnings, *result["messages"]]:  # the warnings again, where the end of a long run is read
        click.echo(line, err=True)
    sys.exit(code)


def local_to_help(provider: str) -> str:
    record = record_for(provider)
    return (f"Copy a Label Studio data dir's media to {record.display}, verify every file, then switch.\n\n"
            "First the checks of `lsmigrate doctor`: a failed one stops here, a warning (no CORS rule)\n"
            "is printed and the copy goes on. The target comes from --to, or from the deployment's own\n"
            "settings (--env-file, --compose, --values, or the environment), exactly as Label Studio\n"
            f"reads them. With one of those files given, it is switched to the {record.bucket_word} (asking first,\n"
            "unless --yes) once all is verified.\n\n\b\nExamples:\n"
            + "".join(f"  lsmigrate local-to-{provider} {example}\n" for example in record.words.examples))


def local_to(provider: str):
    scheme = record_for(provider).url_example

    @click.option("--data-dir", type=click.Path(file_okay=False), help="Label Studio's base data dir (default: as Label Studio finds it).")
    @click.option("--to", "to", help=f"Destination URL ({scheme}); default: from the deployment's settings.")
    @options(*target_option_names(provider), provider=provider)
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
        run_local_to_command(provider, data_dir=data_dir, to=to, download=download, yes=yes, no_nginx=no_nginx,
                             no_cutover=no_cutover, apply_cors=apply_cors, move=move, as_json=as_json,
                             quiet=quiet, verbose=verbose, kwargs=kwargs)

    command.__doc__ = local_to_help(provider)
    return command


for _provider in PROVIDERS:
    main.command(name=f"local-to-{_provider}")(local_to(_provider))
