"""The docker env file (`docker run --env-file`, compose's `.env` and `env_file:`): parsing it and editing it
line by line.

A line that is written takes the one form `docker run --env-file` and docker compose read alike
(envfile_rules); every other line stays as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import envfile_rules
from .text import DeploymentFileError, StrPath, eol_of, match_final_newline, read_text, split_lines

_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_KEY_RE = re.compile(_KEY)
_ASSIGN_RE = re.compile(rf"(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>{_KEY})(?P<eq>[ \t]*=)(?P<rest>.*)")
_BARE_RE = re.compile(rf"[ \t]*(?:export[ \t]+)?(?P<key>{_KEY})[ \t]*")
_DQ_UNESCAPE_RE = re.compile(r'\\(["\\])')
_INLINE_COMMENT_RE = re.compile(r"[ \t]#")


@dataclass(frozen=True)
class EnvLine:
    """One line of an env file. For an assignment, `head + <raw value> + tail == text`."""

    text: str
    eol: str
    key: str | None = None
    value: str | None = None  # None for a bare `KEY` (taken from the host environment)
    head: str = ""
    tail: str = ""
    quote: str = ""


def _closing_quote(s: str, quote: str) -> int:
    i = 1
    while i < len(s):
        if quote == '"' and s[i] == "\\":
            i += 2
            continue
        if s[i] == quote:
            return i
        i += 1
    return -1


def _parse_env_value(rest: str, where: str) -> tuple[int, int, str, str]:
    """(start, end, value, quote) of the value in `rest` (the text after `=`)."""
    stripped = rest.lstrip(" \t")
    start = len(rest) - len(stripped)
    quote = stripped[:1]
    if quote in ('"', "'"):
        close = _closing_quote(stripped, quote)
        if close < 0:
            kind = "double" if quote == '"' else "single"
            raise DeploymentFileError(f"{where}: unterminated {kind} quote")
        after = stripped[close + 1 :].strip(" \t")
        if after and not after.startswith("#"):
            raise DeploymentFileError(f"{where}: unexpected text after the closing quote")
        raw = stripped[1:close]
        value = _DQ_UNESCAPE_RE.sub(r"\1", raw) if quote == '"' else raw
        return start, start + close + 1, value, quote
    comment = _INLINE_COMMENT_RE.search(rest)
    value = (rest[: comment.start()] if comment else rest).strip(" \t")
    if not value:
        return 0, 0, "", ""
    return start, start + len(value), value, ""


def _parse_env_line(text: str, eol: str, where: str, *, first: bool) -> EnvLine:
    body = text.removeprefix("\ufeff") if first else text
    bom = text[: len(text) - len(body)]
    stripped = body.strip()
    if not stripped or stripped.startswith("#"):
        return EnvLine(text, eol)
    if bare := _BARE_RE.fullmatch(body):
        kept = body.rstrip(" \t")
        return EnvLine(text, eol, key=bare["key"], head=bom + kept + "=", tail=body[len(kept) :])
    m = _ASSIGN_RE.fullmatch(body)
    if m is None:
        reason = "invalid variable name before '='" if "=" in body else "expected KEY=VALUE"
        raise DeploymentFileError(f"{where}: {reason}")
    rest = m["rest"]
    start, end, value, quote = _parse_env_value(rest, where)
    head = bom + m["lead"] + m["key"] + m["eq"] + rest[:start]
    return EnvLine(text, eol, m["key"], value, head, rest[end:], quote)


def parse_env(text: str, name: str) -> list[EnvLine]:
    return [
        _parse_env_line(content, eol, f"{name} line {n}", first=n == 1)
        for n, (content, eol) in enumerate(split_lines(text), start=1)
    ]


def _env_values(lines: list[EnvLine]) -> dict[str, str]:
    return {ln.key: ln.value for ln in lines if ln.key is not None and ln.value is not None}


def read_env_file(path: StrPath) -> dict[str, str]:
    """KEY -> value of a docker `--env-file` / compose `.env` style file (later lines win)."""
    return _env_values(parse_env(read_text(path), os.fspath(path)))


def env_text_settings(text: str) -> dict[str, str]:
    """KEY -> value of an env file's text (what a switch's record compares)."""
    return _env_values(parse_env(text, "file"))


def check_env_changes(changes: Mapping[str, str | None], name: str) -> None:
    for key, value in changes.items():
        if not _KEY_RE.fullmatch(key):
            raise DeploymentFileError(f"{name}: {key!r} is not a valid variable name")
        if value is not None and ("\n" in value or "\r" in value or "\0" in value):
            raise DeploymentFileError(f"{name}: the new value of {key} contains a line break or NUL")


def _check_env_file_values(changes: Mapping[str, str | None], name: str) -> None:
    for key, value in changes.items():
        why = None if value is None else envfile_rules.unwritable(key, value)
        if why:
            raise DeploymentFileError(
                f"{name}: not writing {key}: its new value {why}, so no way of writing it reads the same under "
                f"`docker run --env-file` and docker compose; put a bare `{key}` line in the file and pass the "
                "value in the environment that starts Label Studio")


def _env_assignment(ln: EnvLine, value: str) -> str:
    """`KEY=value`, the one form docker run and compose read alike: the line keeps its indent, loses `export`,
    spaces around `=` and quotes, and its inline comment moves to a line of its own above it."""
    bom = "\ufeff" if ln.text.startswith("\ufeff") else ""
    body = ln.text[len(bom):]
    indent = body[: len(body) - len(body.lstrip(" \t"))]
    comment = ln.tail.strip(" \t")
    above = f"{bom}{indent}{comment}{ln.eol}" if comment.startswith("#") else bom
    return f"{above}{indent}{ln.key}={value}{ln.eol}"


def update_env_text(text: str, changes: Mapping[str, str | None], *, name: str = "env file") -> str:
    """`text` with `changes` applied (None removes); every line written reads the same under `docker run
    --env-file` and docker compose (envfile_rules), or nothing is written."""
    check_env_changes(changes, name)
    _check_env_file_values(changes, name)
    eol = eol_of(text)
    out: list[str] = []
    seen: set[str] = set()
    for ln in parse_env(text, name):
        if ln.key is None or ln.key not in changes:
            out.append(ln.text + ln.eol)
            continue
        seen.add(ln.key)
        new = changes[ln.key]
        if new is not None:
            out.append(_env_assignment(ln, new))
    added = [f"{k}={v}{eol}" for k, v in changes.items() if v is not None and k not in seen]
    if added and out and not out[-1].endswith("\n"):
        out[-1] += eol
    return match_final_newline(text, "".join(out + added), eol)

