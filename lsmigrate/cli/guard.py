"""Signals and exit codes: every known failure as one line and its code, never a traceback for bad input;
SIGINT and SIGTERM unwind the run in order (a second one exits at once)."""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading

import click

from ..deployment.text import DeploymentFileError
from ..engine.sizes import SettingsError
from ..journal import JournalError
from ..labelstudio import NotADataDir
from ..lock import LockHeld
from ..stores.errors import StoreError
from ..target import TargetError
from ..workflow.errors import NothingToMove, Refused
from ..workflow.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK, EXIT_TERMINATED
from .output import fail

USER_ERRORS = (NotADataDir, TargetError, DeploymentFileError, JournalError, StoreError, SettingsError, Refused)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt: the same orderly stop, then exit 143."""


_signalled = {"code": 0, "said": False}  # the first SIGINT/SIGTERM's exit code; its line printed yet?


def _stop_line(code: int) -> str:
    how = "terminated" if code == EXIT_TERMINATED else "interrupted"
    return f"lsmigrate: {how}; run the same command again to resume"


def _on_signal(signum, frame) -> None:
    """The first SIGINT or SIGTERM unwinds the run in order (the engine stops its threads, `guarded` says
    so); a second one exits at once, whatever that order is still waiting for."""
    code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
    if _signalled["code"]:
        if not _signalled["said"]:
            os.write(2, (_stop_line(code) + "\n").encode())
        os._exit(code)
    _signalled["code"] = code
    raise Terminated() if code == EXIT_TERMINATED else KeyboardInterrupt()


def _catch_signals() -> dict:
    """Installs `_on_signal` for SIGINT and SIGTERM; returns the handlers to put back (commands also run
    inside other programs: the tests' CliRunner). Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    _signalled.update(code=0, said=False)
    return {number: signal.signal(number, _on_signal) for number in (signal.SIGINT, signal.SIGTERM)}


def _stopped(exc: KeyboardInterrupt) -> None:
    code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    click.echo(_stop_line(code), err=True)
    _signalled["said"] = True
    if _signalled["code"]:
        # A real signal, and the run has unwound: journal committed and closed, lock released. Threads
        # still inside a request (a stalled network) would hold the exit for their timeouts, and what
        # they finish can no longer be journaled: end here, without waiting for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def guarded(func):
    """One clear line and the right exit code for every known failure; never a traceback for bad input."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        previous = _catch_signals()
        try:
            return func(*args, **kwargs)
        except LockHeld as exc:
            fail(str(exc), EXIT_LOCKED)
        except USER_ERRORS as exc:
            fail(str(exc))
        except NothingToMove as exc:
            click.echo(str(exc), err=True)
            sys.exit(EXIT_OK)
        except KeyboardInterrupt as exc:
            _stopped(exc)
        except Exception as exc:
            if kwargs.get("verbose", 0) >= 2:
                raise
            fail(f"unexpected {exc.__class__.__name__}: {exc} (run again with -vv for the details, "
                 "and please report it)", EXIT_FAILED)
        finally:
            if not _signalled["code"]:  # after a signal, a second one must still exit at once
                for number, handler in previous.items():
                    if handler is not None:
                        signal.signal(number, handler)

    return wrapper
