"""What a container sees from an env file, read the way each consumer reads it. Independent of lsmigrate.

`docker_env_file`: `docker run --env-file` (docker/cli pkg/kvfile `parseKeyValueFile`, as released through
v28): BOM dropped, each line trimmed on the left (Go unicode.IsSpace), `#` lines and empty lines skipped,
the value is everything after the first `=` as it is (quotes, escapes, trailing spaces and `#` included), a
name holding a space or tab is an error, a bare name takes the host's value when the host has it, a line
over 64 KiB is an error.

`compose_env_file`: compose's `env_file:` and `.env` (compose-go dotenv parser + template.Substitute):
`export` dropped, spaces around `=` (or `:`) dropped, quoted values may span lines, single quotes literal,
double quotes expand `\\n`-style escapes, an unquoted value ends at ` #` and loses trailing whitespace,
`$$`, `$NAME`, `${NAME}`, `${NAME:-default}`... are interpolated in unquoted and double-quoted values from
the host, then from the file's earlier variables; any other `$` is an error.
"""

from __future__ import annotations

import re

GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
           "\u2028\u2029\u202f\u205f\u3000"
COMPOSE_SPACE = "\t\v\f\r \x85\xa0"  # dotenv isSpace: no line break
MAX_SCAN_TOKEN = 64 * 1024


class EnvFileError(ValueError):
    pass


# ----------------------------------------------------------------------------------------------- docker run


def docker_env_file(text: str, host: dict[str, str] | None = None) -> dict[str, str]:
    host = host or {}
    out: dict[str, str] = {}
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")  # bufio.ScanLines drops a final \r
        if len(line.encode()) >= MAX_SCAN_TOKEN:
            raise EnvFileError("bufio.Scanner: token too long")
        if number == 1:
            line = line.removeprefix("\ufeff")
        line = line.lstrip(GO_SPACE)
        if not line or line[0] == "#":
            continue
        key, sep, value = line.partition("=")
        if not key:
            raise EnvFileError(f"no variable name on line '{line}'")
        if " " in key or "\t" in key:
            raise EnvFileError(f"variable '{key}' contains whitespaces")
        if sep:
            out[key] = value
        elif line in host:
            out[key] = host[line]
    return out


# ---------------------------------------------------------------------------------------------- compose


_TEMPLATE = re.compile(r"\$(?:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)"
                       r"|\{(?P<braced>[_a-z][_a-z0-9]*(?::?[-?+][^}]*)?)\}|(?P<invalid>))", re.IGNORECASE)
_ESCAPE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0\d{0,3})")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", '"': '"',
                   "\\": "\\"}


def compose_interpolate(value: str, lookup) -> str:
    """compose-go template.Substitute: what compose makes of `$` in a value (env file or compose YAML)."""
    def one(m: re.Match) -> str:
        if m["escaped"]:
            return "$"
        if m["named"]:
            return lookup(m["named"]) or ""
        if m["braced"] is None:
            raise EnvFileError(f"Invalid template: {value!r}")
        name, op, arg = re.fullmatch(r"([_a-z][_a-z0-9]*)(:?[-?+])?(.*)", m["braced"], re.IGNORECASE).groups()
        found = lookup(name)
        empty = found is None or (found == "" and op and op.startswith(":"))
        if op in ("-", ":-"):
            return compose_interpolate(arg, lookup) if empty else found
        if op in ("+", ":+"):
            return "" if empty else compose_interpolate(arg, lookup)
        if op in ("?", ":?") and empty:
            raise EnvFileError(f"required variable {name} is missing a value: {arg}")
        return found or ""

    return _TEMPLATE.sub(one, value)


def _expand_escapes(value: str) -> str:
    def one(m: re.Match) -> str:
        c = m[0][1:]
        if c == "$":
            return "$$"  # compose-go: a literal `$`, the interpolation's own escape
        if c[0] == "0":  # \0ddd: octal, as strconv.UnquoteChar reads \ddd
            return chr(int(c, 8)) if len(c) == 4 and "8" not in c and "9" not in c else m[0]
        return _SIMPLE_ESCAPES.get(c, m[0])

    return _ESCAPE.sub(one, value)


def compose_env_file(text: str, host: dict[str, str] | None = None) -> dict[str, str]:
    host = host or {}
    out: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        return host[name] if name in host else out.get(name)

    src = text.removeprefix("\ufeff")
    while True:
        src = src.lstrip(GO_SPACE)  # getStatementStart
        if not src:
            return out
        if src[0] == "#":
            cut = src.find("\n")
            if cut < 0:
                return out
            src = src[cut:]
            continue
        if re.match(r"export[\t\n\f\r ]+", src):
            src = src[len("export"):].lstrip(COMPOSE_SPACE)
        key, end, inherited = "", 0, False  # locateKeyName: an unterminated last line has no key
        for i, c in enumerate(src):
            if c in COMPOSE_SPACE:
                continue
            if c in "=:\n":
                key, end, inherited = src[:i], i + 1, c == "\n"
                break
            if not (c in "_.-[]" or c.isalpha() or c.isnumeric()):
                raise EnvFileError(f"unexpected character {c!r} in variable name")
        key = key.rstrip(GO_SPACE)
        src = src[end:].lstrip(COMPOSE_SPACE)
        if " " in key:
            raise EnvFileError("key cannot contain a space")
        if inherited:
            if key in host:
                out[key] = host[key]
            continue
        quote = src[:1]
        if quote not in ("'", '"'):
            value, _, src = src.partition("\n")
            value = value.split(" #", 1)[0].rstrip(GO_SPACE)
            out[key] = compose_interpolate(value, lookup)
            continue
        close = next((i for i in range(1, len(src)) if src[i] == quote and src[i - 1] != "\\"), -1)
        if close < 0:
            raise EnvFileError(f"unterminated quoted value {src.partition(chr(10))[0]}")
        value, src = src[1:close], src[close + 1:]
        out[key] = compose_interpolate(_expand_escapes(value), lookup) if quote == '"' else value
