"""How the two consumers of an env file read it, and where they disagree.

`docker run --env-file` (docker/cli pkg/kvfile, `parseKeyValueFile`): one line per variable, the line trimmed
on the left only, `#` lines skipped, the value is everything after the first `=` taken as it is: quotes,
trailing spaces, ` # comments` and `$` all stay in the value; a name with whitespace (`export A=1`, `A = 1`)
makes docker refuse the whole file. Lines are limited to 64 KiB.

docker compose (`env_file:` and `.env`, compose-go dotenv): `export` is dropped, space around `=` is
allowed, quotes are stripped (escapes expanded inside double quotes), an unquoted value ends at ` #` and
loses its trailing whitespace, and `$` is interpolated (`$$` is a literal `$`) in unquoted and
double-quoted values.

So a value reads the same under both only when written bare (`KEY=value`) and when compose has nothing to
strip, cut or expand in it. Anything else is refused on writing and reported on reading.
"""

from __future__ import annotations

import re

# Go's unicode.IsSpace: what compose trims from the right of a bare value and docker from the left of a line.
GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                     "\u200a\u2028\u2029\u202f\u205f\u3000")
# bufio.MaxScanTokenSize: docker's scanner stops on a longer line ("token too long").
DOCKER_MAX_LINE = 64 * 1024
# compose-go cuts a bare value at " #"; lsmigrate's own reader (and older compose-go) also at a tab, so a
# value is not written with either.
_COMMENT = re.compile(r"[ \t]#")


def unwritable(key: str, value: str) -> str | None:
    """Why `KEY=value` cannot be written so that docker run and docker compose read `value`; None if it can."""
    if "\n" in value or "\r" in value:
        return "contains a line break (docker reads one line per variable)"
    if "\0" in value:
        return "contains a NUL character"
    if value and (value[0] in GO_SPACE or value[-1] in GO_SPACE):
        return "starts or ends with whitespace (docker run keeps it, docker compose strips it)"
    if value[:1] in ("'", '"'):
        return "starts with a quote (docker compose takes it as quoting, docker run keeps it)"
    if "$" in value:
        return "contains '$' (docker compose expands it, even as '$$'; docker run keeps it as it is)"
    if _COMMENT.search(value):
        return "contains ' #' (docker compose cuts a comment there; docker run keeps it)"
    if len(f"{key}={value}".encode()) >= DOCKER_MAX_LINE - 1:
        return "is longer than docker's 64 KiB line limit"
    return None


_NAME = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*(?==|$)")


def _closing(rest: str, quote: str) -> int:
    i = 1
    while i < len(rest):
        if rest[i] == "\\" and quote == '"':
            i += 2
            continue
        if rest[i] == quote:
            return i
        i += 1
    return -1


def _reasons(docker_key: str, raw: str | None) -> list[str]:
    """What docker run does differently from docker compose with one line (`docker_key` is the text before
    the first `=`, `raw` the text after it, None when there is no `=`)."""
    reasons = []
    if any(c in docker_key for c in " \t"):
        reasons.append("docker run refuses the file: whitespace in or around the name (`export`, or a space "
                       "before '=')")
    if ":" in docker_key:
        reasons.append("docker compose reads ':' as '=' (YAML style), docker run does not")
    if raw is None:
        return reasons
    value = raw.lstrip(" \t\v\f\r\x85\xa0")
    if value != raw:
        reasons.append("docker run keeps the whitespace after '=' (docker compose strips it)")
    if value[:1] in ("'", '"'):
        reasons.append("docker run --env-file keeps the quotes as part of the value (docker compose strips them)")
        if _closing(value, value[0]) < 0:
            reasons.append("the quoted value spans several lines, which docker run cannot read")
        if value[0] == '"' and "$" in value:
            reasons.append("docker compose expands '$' in it, docker run does not")
        return reasons
    if " #" in value:
        reasons.append("docker run reads the ' #' comment as part of the value (docker compose drops it)")
        value = value.split(" #", 1)[0]
    elif value and value[-1] in GO_SPACE:
        reasons.append("docker run keeps the trailing whitespace (docker compose strips it)")
    if "$" in value:
        reasons.append("docker compose expands '$' in it, docker run does not")
    return reasons


def differences(text: str, name: str) -> list[str]:
    """One line per variable that `docker run --env-file` and docker compose would read differently, naming
    the file, line and variable (never the value)."""
    found: dict[str, tuple[list[int], list[str]]] = {}
    lines = text.removeprefix("\ufeff").split("\n")
    skip_to = -1
    for number, line in enumerate(lines, start=1):
        if number <= skip_to:
            continue
        line = line.removesuffix("\r").lstrip("".join(GO_SPACE))
        if not line or line.startswith("#"):
            continue
        docker_key, sep, raw = line.partition("=")
        m = _NAME.match(docker_key.strip(" \t") if sep else line.rstrip(" \t"))
        key = m[1] if m else f"line {number}"
        reasons = _reasons(docker_key, raw if sep else None)
        if sep and raw.lstrip(" \t")[:1] in ("'", '"'):
            quoted = raw.lstrip(" \t")
            if _closing(quoted, quoted[0]) < 0:
                skip_to = next((n for n in range(number + 1, len(lines) + 1) if quoted[0] in lines[n - 1]),
                               len(lines))
        if reasons:
            numbers, seen = found.setdefault(key, ([], []))
            numbers.append(number)
            seen.extend(r for r in reasons if r not in seen)
    out = []
    for key, (numbers, reasons) in found.items():
        where = f"line {numbers[0]}" if len(numbers) == 1 else "lines " + ", ".join(map(str, numbers))
        # "(KEY):", not "KEY:": a message shaped like a `name: value` line would be masked whole as a secret
        out.append(f"{name} {where} ({key}): {'; '.join(reasons)}")
    return out
