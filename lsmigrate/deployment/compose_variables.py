"""The variables docker compose interpolates a compose file with, and how it interpolates (compose-go's
template): the process environment, then the `.env` next to the compose file, and a service's `env_file:`
entries read the compose way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from .envfile import parse_env
from .text import DeploymentFileError, StrPath, read_text

# compose-go's template (template/template.go): `$$`, `$NAME`, `${NAME}`, `${NAME<op><arg>}` with op one of
# `:-` `-` `:+` `+` `:?` `?` (the arg interpolated in turn); any other `$` makes compose refuse the file.
_TEMPLATE_NAME_RE = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_TEMPLATE_BRACED_RE = re.compile(r"([_A-Za-z][_A-Za-z0-9]*)(?:(:?[-+?])(.*))?", re.DOTALL)

Lookup = Callable[[str], "str | None"]


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `${` at `start` (compose-go getFirstBraceClosingIndex), -1 if none."""
    depth = 0
    i = start
    while i < len(text):
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        if text.startswith("${", i):
            depth += 1
            i += 1
        i += 1
    return -1


def _one_line(text: str) -> str:
    return " ".join(text.split())[:120]


def interpolate(template: str, lookup: Lookup, where: str, unset: list[str] | None = None) -> str:
    """What docker compose makes of `template` (compose-go template.Substitute). An unset variable with no
    default gives "" and a note in `unset` (compose warns); `${NAME?err}`/`${NAME:?err}` unmet and a stray `$`
    raise DeploymentFileError naming `where` and the variable, never a value."""
    out: list[str] = []
    i = 0
    while (dollar := template.find("$", i)) >= 0:
        out.append(template[i:dollar])
        after = template[dollar + 1 : dollar + 2]
        if after == "$":
            out.append("$")
            i = dollar + 2
            continue
        if after == "{":
            close = _closing_brace(template, dollar)
            m = _TEMPLATE_BRACED_RE.fullmatch(template, dollar + 2, close) if close >= 0 else None
            if m is None:
                raise DeploymentFileError(f"{where}: invalid `${{...}}` in the value (docker compose refuses it; "
                                          "write `$$` for a literal `$`)")
            out.append(_substitute(m[1], m[2], m[3], lookup, where, unset))
            i = close + 1
            continue
        m = _TEMPLATE_NAME_RE.match(template, dollar + 1)
        if m is None:
            raise DeploymentFileError(f"{where}: a `$` not followed by a variable name (docker compose refuses "
                                      "it; write `$$` for a literal `$`)")
        out.append(_substitute(m[0], None, None, lookup, where, unset))
        i = m.end()
    out.append(template[i:])
    return "".join(out)


def _substitute(name: str, op: str | None, arg: str | None, lookup: Lookup, where: str,
                unset: list[str] | None) -> str:
    value = lookup(name)
    if op is None:
        if value is None and unset is not None:
            unset.append(f'{where}: the "{name}" variable is not set; docker compose makes it a blank string')
        return value or ""
    shown = _one_line(arg or "")  # the message as written: its interpolation could hold a secret
    arg = interpolate(arg or "", lookup, where, unset)  # compose expands the arg whether it is used or not
    empty = value is None or (op.startswith(":") and value == "")
    if op.endswith("-"):
        return arg if empty else value or ""
    if op.endswith("+"):
        return "" if empty else arg
    if empty:
        why = "is not set" if value is None else "is empty"
        raise DeploymentFileError(f"{where}: docker compose refuses to start: the required variable {name} {why}"
                                  + (f" ({shown})" if shown else ""))
    return value or ""


class ComposeVariables:
    """The variables docker compose interpolates a compose file with: the process environment first, then
    the `.env` file in the compose file's directory (the project directory), itself interpolated."""

    def __init__(self, compose: StrPath, unset: list[str] | None) -> None:
        self.unset = unset
        self.dotenv_path = Path(compose).parent / ".env"
        self.dotenv: dict[str, str] | None = None  # read when first needed: most compose files use no `$`

    def get(self, name: str) -> str | None:
        if name in os.environ:
            return os.environ[name]
        if self.dotenv is None:
            self.dotenv = {}
            if self.dotenv_path.is_file():
                self.dotenv = read_compose_env_file(self.dotenv_path, os.environ.get, self.unset)
        return self.dotenv.get(name)

    def expand(self, value: str, where: str) -> str:
        return interpolate(value, self.get, where, self.unset)


def read_compose_env_file(path: StrPath, lookup: Lookup, unset: list[str] | None) -> dict[str, str]:
    """An env file as docker compose reads it (`env_file:`, `.env`): unquoted and double-quoted values
    interpolated from `lookup`, then from the file's own earlier lines; a bare `KEY` takes lookup's value."""
    name = os.fspath(path)
    out: dict[str, str] = {}

    def find(key: str) -> str | None:
        found = lookup(key)
        return found if found is not None else out.get(key)

    for number, ln in enumerate(parse_env(read_text(path), name), start=1):
        if ln.key is None:
            continue
        if ln.value is None:
            inherited = lookup(ln.key)
            if inherited is not None:
                out[ln.key] = inherited
        elif ln.quote == "'":
            out[ln.key] = ln.value
        else:
            out[ln.key] = interpolate(ln.value, find, f"{name} line {number}: {ln.key}", unset)
    return out

