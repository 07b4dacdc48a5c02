"""Command line: parse, call the workflow, print, exit code. Nothing else lives here.

group: the `lsmigrate` group and its one-line usage errors; options: the shared options and what they
become for the workflow; output: printing; guard: signals and exit codes; copying, switching, syncing,
preflight: the commands (plan/copy/verify, cutover/local-to-*, sync, doctor).
"""

from . import copying, preflight, switching, syncing  # noqa: F401 - importing a command module registers its commands
from .group import main

__all__ = ["main"]
