"""Text as the deployment files hold it: reading one as UTF-8, its lines and line endings, and a diff.

Every edit keeps the file's own line ending and final newline (or the lack of one).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

StrPath = str | os.PathLike[str]


class DeploymentFileError(Exception):
    """One-line, user-facing message naming the file (and line number where known). Never includes a secret
    value."""


def split_lines(text: str) -> list[tuple[str, str]]:
    """(content, end-of-line) pairs; end-of-line is "\\n", "\\r\\n" or "" for a last line without one."""
    parts = text.split("\n")
    lines = [(p[:-1], "\r\n") if p.endswith("\r") else (p, "\n") for p in parts[:-1]]
    if parts[-1]:
        lines.append((parts[-1], ""))
    return lines


def keepends(text: str) -> list[str]:
    """Lines with their "\n" (only "\n" separates lines, unlike str.splitlines)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def eol_of(text: str) -> str:
    """The file's line ending: "\r\n" when most of its lines end so."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"


def match_final_newline(original: str, new: str, eol: str) -> str:
    """Give `new` a final newline exactly when `original` had one (an empty original counts as having one)."""
    if original and not original.endswith("\n"):
        if new.endswith("\r\n"):
            return new[:-2]
        return new[:-1] if new.endswith("\n") else new
    return new + eol if new and not new.endswith("\n") else new


def read_text(path: StrPath) -> str:
    name = os.fspath(path)
    p = Path(path)
    if p.is_dir():
        raise DeploymentFileError(f"{name} is a directory, not a file")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DeploymentFileError(f"{name}: no such file") from None
    except OSError as exc:
        raise DeploymentFileError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DeploymentFileError(f"{name} line {line}: not UTF-8 text") from None


def unified_diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(keepends(old), keepends(new), fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
