"""local-to-*'s steps after the preflight: copy (or, when moving, sync from the current bucket), verify,
switch, stopping at the first step that is not clean."""

from __future__ import annotations

from ..jobs import Source
from .copy import run_copy, run_move
from .cutover import Approve, run_cutover, run_gate
from .options import RunOptions


def run_local_to(source: Source | None, target, opts: RunOptions, *, current, download: bool, no_cutover: bool,
                 no_nginx: bool, approve: Approve) -> dict:
    """{"copy", "verify", "cutover", "messages"}: a step not reached stays None; `messages` are the lines
    that say where it stopped and why."""
    copied = run_move(current, target, opts) if current else run_copy(source, target, opts)
    result = {"copy": copied, "verify": None, "cutover": None, "messages": []}
    _verify_and_switch(result, source, target, opts, current=current, download=download, no_cutover=no_cutover,
                       no_nginx=no_nginx, approve=approve)
    return result


def _verify_and_switch(result: dict, source: Source | None, target, opts: RunOptions, *, current, download: bool,
                       no_cutover: bool, no_nginx: bool, approve: Approve) -> None:
    copied, messages = result["copy"], result["messages"]
    if copied["fatal"]:
        messages.append(f"lsmigrate: error: {copied['fatal']}")
        return
    if copied["failed"] or copied["unaccounted"]:
        count = copied["failed"] or copied["unaccounted"]
        messages.append(f"lsmigrate: {count} file(s) failed; fix them and run the same command again")
        return
    result["verify"] = checked = run_gate(source, target, opts, current=current, download=download)
    if checked["fatal"]:
        messages.append(f"lsmigrate: error: {checked['fatal']}")
        return
    if not checked["clean"]:
        messages.append("lsmigrate: verification found missing, different or unchecked objects; not switching")
        return
    if no_cutover or not opts.deployment_file:
        if not opts.deployment_file and not no_cutover:
            messages.append("Every file is verified. No --env-file/--compose/--values given, so the deployment "
                            "was not switched (run `lsmigrate cutover` with one).")
        return
    result["cutover"] = run_cutover(source, target, opts, dry_run=False, no_nginx=no_nginx, approve=approve,
                                    current=current)
