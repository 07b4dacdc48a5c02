"""`cutover`: the gate (every file verified at the destination), then the switch of the deployment file."""

from __future__ import annotations

from collections.abc import Callable

from ..jobs import Source, describe
from ..outcome import FOUND_WANTING
from ..report import verify_document
from .copy import run_verify
from .errors import NothingToMove, Refused
from .exit_codes import EXIT_USAGE
from .options import RunOptions

Approve = Callable[[object, object], None]  # (edit, target): show the change and ask; raises or exits to decline


def current_to_move(opts: RunOptions, target, *, move: bool):
    """Where the file points Label Studio now, when switching to `target` would leave it; refused (exit 2)
    unless --move-from-current, because every file stored there would stop being served."""
    from ..jobs import differences, live_target

    name = opts.deployment_file
    if not name:
        return None
    current = live_target(env_file=opts.env_file, compose=opts.compose, compose_service=opts.compose_service,
                          values=opts.values, endpoint_url=opts.endpoint_url)
    changed = differences(current, target) if current else []
    if changed and not move:
        raise Refused(
            f"{name} already points Label Studio at {describe(current)}; switching it to {describe(target)} "
            f"({'; '.join(changed)}) would stop Label Studio serving every file stored there. Nothing was "
            f"changed. To move on purpose, pass --move-from-current: then every object at {current.url} (not the "
            f"data dir) must be verified at {target.url} before the switch, and local-to-* copies them there "
            "first (sync)")
    if move and current is None:
        raise Refused(f"--move-from-current: {name} does not point Label Studio at a bucket yet, so there is "
                      "nothing to move from; run without it")
    if move and not changed:
        raise NothingToMove(f"{name} already points Label Studio at {describe(target)}; nothing to move.")
    return current if changed else None


def empty_tree(source: Source | None, checked: dict, *, allow_empty: bool) -> str | None:
    """Why a switch over a data dir with no file at all is refused (None when it is not)."""
    if source is None or checked.get("planned") or allow_empty:
        return None
    return (f"no file at all under {source.root}: is --data-dir right (Label Studio keeps uploads in "
            "<data dir>/media), and is its disk mounted? Nothing was switched. A deployment with nothing "
            "uploaded yet needs no copy: pass --allow-empty to switch it anyway")


def run_gate(source: Source | None, target, opts: RunOptions, *, current=None, download: bool = False) -> dict:
    """What must be verified at the destination before a switch: the data dir's files, or when moving,
    every object at the current destination."""
    if current is None:
        return run_verify(source, target, opts, download=download)
    from ..move import verify_objects

    report = verify_objects(current, target, settings=opts.settings, state=opts.state)
    return verify_document(report, source=describe(current), destination=describe(target))


def run_cutover(source: Source | None, target, opts: RunOptions, *, dry_run: bool, no_nginx: bool,
                approve: Approve, current=None) -> dict:
    """The switch's document: refused (with why) unless every file is verified; `approve` is asked before
    the file is written (not on a dry run, nor when there is nothing to change)."""
    from .. import cutover
    from ..deployment import backups
    from ..deployment.settings import deployment_settings

    settings = deployment_settings(env_file=opts.env_file, compose=opts.compose,
                                   compose_service=opts.compose_service)
    edit = cutover.prepare(target, settings, env_file=opts.env_file, compose=opts.compose,
                           compose_service=opts.compose_service, values=opts.values, no_nginx=no_nginx)
    checked = run_gate(source, target, opts, current=current)
    doc = {"file": str(edit.path), "destination": describe(target), "verify": checked, "diff": edit.diff(),
           "switched": False, "backup": None, "next_steps": []}
    if current is not None:
        doc["moving_from"] = describe(current)
    if checked["fatal"] or not checked["clean"]:
        doc["refused"] = _not_verified(checked, source, target, opts, current)
        return doc
    doc["refused"] = empty_tree(source if current is None else None, checked, allow_empty=opts.allow_empty)
    if doc["refused"]:
        doc["exit"] = EXIT_USAGE
        return doc
    del doc["refused"]
    if not edit.changed:
        doc["next_steps"] = ["The file already points at this destination; nothing to change."]
        return doc
    if dry_run:
        return doc
    approve(edit, target)
    doc["backup"] = str(backups.write_with_backup(edit.path, edit.new_text))
    doc["switched"] = True
    doc["next_steps"] = cutover.next_steps(edit, target)
    return doc


def _not_verified(checked: dict, source: Source | None, target, opts: RunOptions, current) -> str:
    """The refusal when files are missing, different or unchecked at the destination, with the command
    that copies them."""
    counts = checked["counts"]
    missing = sum(counts.get(word.value, 0) for word in FOUND_WANTING) + checked["unaccounted"]
    if current is None:
        what = source.root
        hint = f"`lsmigrate copy {source.data_dir.base if source.data_dir else source.root} {same_place(opts, target)}`"
    else:  # local-to-* copies them with sync, reading both ends from the file's own settings
        what = current.url
        hint = f"`lsmigrate local-to-{target.provider} --move-from-current` with the same options"
    return (f"{missing} file(s) of {what} are not verified at {target.url}; "
            f"not switching. Copy them first ({hint}), then run cutover again")


def same_place(opts: RunOptions, target) -> str:
    """The options that name this destination again, for a command the operator is told to run next."""
    from ..endpoints import public

    for kind, path in opts.deployment_files:
        return f"--{kind.option} {path}"
    endpoint = f" --endpoint-url {public(target.endpoint_url)}" if target.endpoint_url else ""
    return f"{target.url}{endpoint}"
