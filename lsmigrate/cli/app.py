"""The whole command line: the `lsmigrate` group with every command on it (importing a command module
registers its commands). The console script and `python -m lsmigrate.cli` start here."""

from . import copying, preflight, switching, syncing  # noqa: F401 - importing a command module registers its commands
from .group import main

__all__ = ["main"]
