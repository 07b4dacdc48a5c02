"""Read and edit a Label Studio deployment's own configuration files (env file, docker-compose.yml,
Helm values), keeping comments, order, quoting and layout. Writing them with a backup, and rolling back,
is backups.py's (which reads files with this module's parsers; this module never imports it).

Edits never touch a line they do not have to: env files are edited line by line, and a line that is
written takes the one form `docker run --env-file` and docker compose read alike; YAML is edited with
ruamel.yaml in round-trip mode and the result is laid back onto the original text, so that every line
ruamel.yaml would merely have reformatted stays byte-identical.
"""

from __future__ import annotations

import difflib
import io
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.tokens import CommentToken

from . import envfile_rules

StrPath = str | os.PathLike[str]

# Names of the service that runs Label Studio, tried when no image names it unambiguously.
_SERVICE_NAMES = ("app", "label-studio", "labelstudio")


class DeploymentFileError(Exception):
    """One-line, user-facing message naming the file (and line number where known). Never includes a secret
    value."""


# --------------------------------------------------------------------------------------------- text helpers


def _split_lines(text: str) -> list[tuple[str, str]]:
    """(content, end-of-line) pairs; end-of-line is "\\n", "\\r\\n" or "" for a last line without one."""
    parts = text.split("\n")
    lines = [(p[:-1], "\r\n") if p.endswith("\r") else (p, "\n") for p in parts[:-1]]
    if parts[-1]:
        lines.append((parts[-1], ""))
    return lines


def _keepends(text: str) -> list[str]:
    """Lines with their "\n" (only "\n" separates lines, unlike str.splitlines)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _eol_of(text: str) -> str:
    """The file's line ending: "\r\n" when most of its lines end so."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"


def _match_final_newline(original: str, new: str, eol: str) -> str:
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


# ------------------------------------------------------------------------------------------------- env files

_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_KEY_RE = re.compile(_KEY)
_ASSIGN_RE = re.compile(rf"(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>{_KEY})(?P<eq>[ \t]*=)(?P<rest>.*)")
_BARE_RE = re.compile(rf"[ \t]*(?:export[ \t]+)?(?P<key>{_KEY})[ \t]*")
_DQ_UNESCAPE_RE = re.compile(r'\\(["\\])')
_INLINE_COMMENT_RE = re.compile(r"[ \t]#")


@dataclass(frozen=True)
class _EnvLine:
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


def _parse_env_line(text: str, eol: str, where: str, *, first: bool) -> _EnvLine:
    body = text.removeprefix("\ufeff") if first else text
    bom = text[: len(text) - len(body)]
    stripped = body.strip()
    if not stripped or stripped.startswith("#"):
        return _EnvLine(text, eol)
    if bare := _BARE_RE.fullmatch(body):
        kept = body.rstrip(" \t")
        return _EnvLine(text, eol, key=bare["key"], head=bom + kept + "=", tail=body[len(kept) :])
    m = _ASSIGN_RE.fullmatch(body)
    if m is None:
        reason = "invalid variable name before '='" if "=" in body else "expected KEY=VALUE"
        raise DeploymentFileError(f"{where}: {reason}")
    rest = m["rest"]
    start, end, value, quote = _parse_env_value(rest, where)
    head = bom + m["lead"] + m["key"] + m["eq"] + rest[:start]
    return _EnvLine(text, eol, m["key"], value, head, rest[end:], quote)


def _parse_env(text: str, name: str) -> list[_EnvLine]:
    return [
        _parse_env_line(content, eol, f"{name} line {n}", first=n == 1)
        for n, (content, eol) in enumerate(_split_lines(text), start=1)
    ]


def _env_values(lines: list[_EnvLine]) -> dict[str, str]:
    return {ln.key: ln.value for ln in lines if ln.key is not None and ln.value is not None}


def read_env_file(path: StrPath) -> dict[str, str]:
    """KEY -> value of a docker `--env-file` / compose `.env` style file (later lines win)."""
    return _env_values(_parse_env(read_text(path), os.fspath(path)))


def _check_env_changes(changes: Mapping[str, str | None], name: str) -> None:
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


def _env_assignment(ln: _EnvLine, value: str) -> str:
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
    _check_env_changes(changes, name)
    _check_env_file_values(changes, name)
    eol = _eol_of(text)
    out: list[str] = []
    seen: set[str] = set()
    for ln in _parse_env(text, name):
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
    return _match_final_newline(text, "".join(out + added), eol)


# ------------------------------------------------------------------------------------------------ YAML core


@dataclass(frozen=True)
class _YamlDoc:
    """A YAML file split into the part ruamel.yaml edits (`body`, "\\n" line ends) and the verbatim rest."""

    name: str
    head: str  # comments and a `---` line before the document, kept verbatim (ruamel.yaml drops them)
    body: str
    tail: str  # a closing `...` line and what follows it
    eol: str
    data: Any


_DOC_START_RE = re.compile(r"---[ \t]*(#.*)?")
_DOC_END_RE = re.compile(r"\.\.\.[ \t]*(#.*)?")


def _is_filler(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def _split_document(text: str) -> tuple[str, str, str]:
    lines = text.replace("\r\n", "\n").split("\n")
    start = 0
    for i, line in enumerate(lines):
        if _is_filler(line) or line.startswith("%"):
            continue
        if _DOC_START_RE.fullmatch(line.rstrip()):
            start = i + 1
        break
    end = len(lines)
    for j in range(len(lines) - 1, start - 1, -1):
        if _is_filler(lines[j]):
            continue
        if _DOC_END_RE.fullmatch(lines[j].rstrip()):
            end = j
        break
    join = "\n".join
    head = join(lines[:start]) + "\n" if start else ""
    tail = join(lines[end:]) if end < len(lines) else ""
    return head, join(lines[start:end]) + ("\n" if end < len(lines) else ""), tail


def _new_yaml(indent: tuple[int, int, int] = (2, 4, 2)) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _yaml_problem(exc: YAMLError) -> str:
    if isinstance(exc, DuplicateKeyError):
        return "duplicate key in a mapping"
    problem = getattr(exc, "problem", None) or "not valid YAML"
    return " ".join(str(problem).split())[:120]


def _load_yaml(text: str, name: str) -> _YamlDoc:
    head, body, tail = _split_document(text)
    try:
        data = _new_yaml().load(body)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if isinstance(exc, MarkedYAMLError) and mark is not None:
            line = mark.line + 1 + head.count("\n")
            raise DeploymentFileError(f"{name} line {line}: invalid YAML: {_yaml_problem(exc)}") from None
        raise DeploymentFileError(f"{name}: invalid YAML: {_yaml_problem(exc)}") from None
    return _YamlDoc(name, head, body, tail, _eol_of(text), data)


def _load_yaml_file(path: StrPath) -> _YamlDoc:
    return _load_yaml(read_text(path), os.fspath(path))


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {_plain_key(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool | ScalarBoolean):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return "nan" if math.isnan(node) else float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _plain_key(key: Any) -> Any:
    plain = _plain(key)
    return repr(plain) if isinstance(plain, dict | list) else plain


def _detect_indent(body: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) for ruamel.yaml, from the text's own nesting (default 2, 4, 2)."""
    maps: Counter[int] = Counter()
    seqs: Counter[tuple[int, int]] = Counter()
    opener: int | None = None  # column of the key of the previous line when it opens a block
    for line in body.split("\n"):
        if _is_filler(line):
            continue
        indent = len(line) - len(line.lstrip(" "))
        dash = re.match(r"(-[ ]+)+", line[indent:])
        if opener is not None and dash and indent >= opener:
            first = re.match(r"-[ ]+", line[indent:])
            assert first is not None
            seqs[(indent - opener, len(first.group()))] += 1
        elif opener is not None and indent > opener:
            maps[indent - opener] += 1
        content = line[indent + (dash.end() if dash else 0) :]
        opens = bool(re.search(r":[ \t]*(#.*)?$", content)) and not content.startswith(("#", "'", '"'))
        opener = indent + (dash.end() if dash else 0) if opens else None
    mapping = maps.most_common(1)[0][0] if maps else 2
    offset, width = seqs.most_common(1)[0][0] if seqs else (mapping, 2)
    return mapping, max(offset + width, offset + 2), offset


Parent = tuple[CommentedMap | CommentedSeq, Any]


def _own_keys(node: CommentedMap) -> list[Any]:
    return [k for k, _ in node.non_merged_items()]


def _is_block(node: Any) -> bool:
    return isinstance(node, CommentedMap | CommentedSeq) and len(node) > 0 and not node.fa.flow_style()


def _last_index(node: CommentedMap | CommentedSeq) -> Any:
    if isinstance(node, CommentedSeq):
        return len(node) - 1 if node else None
    keys = _own_keys(node)
    return keys[-1] if keys else None


def _comment_slot(node: CommentedMap | CommentedSeq, key: Any) -> tuple[list[Any], int]:
    """The comment slot after entry `key` of `node`, which holds the comment lines that follow its text."""
    value = node[key]
    if _is_block(value) and _last_index(value) is not None:
        return _comment_slot(value, _last_index(value))
    entry = node.ca.items.setdefault(key, [None, None, None, None])
    return entry, 0 if isinstance(node, CommentedSeq) else 2


def _split_trailing(text: str, min_indent: int | None) -> tuple[str, str]:
    """Split the comment lines after an entry into (those that stay with its block, those that follow it):
    the block keeps its leading comment lines indented at least `min_indent`, without trailing blank lines."""
    if min_indent is None:
        return "", text
    lines = _keepends(text)
    cut = next(
        (i for i, ln in enumerate(lines) if ln.strip() and len(ln) - len(ln.lstrip(" ")) < min_indent),
        len(lines),
    )
    while cut > 0 and not lines[cut - 1].strip():
        cut -= 1
    return "".join(lines[:cut]), "".join(lines[cut:])


def _take_trailing(node: CommentedMap | CommentedSeq, key: Any, min_indent: int | None = None) -> str:
    """Detach and return the full comment lines after entry `key` that belong to what follows it."""
    entry, idx = _comment_slot(node, key)
    token = entry[idx]
    if token is None:
        return ""
    first, _, rest = token.value.partition("\n")
    keep, moved = _split_trailing(rest, min_indent)
    if first.strip() or keep:
        token.value = first + "\n" + keep
    else:
        entry[idx] = None
    return moved


def _put_trailing(node: CommentedMap | CommentedSeq, key: Any, text: str) -> None:
    if not text:
        return
    entry, idx = _comment_slot(node, key)
    token = entry[idx]
    if token is None:
        entry[idx] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        token.value = (token.value if token.value.endswith("\n") else token.value + "\n") + text


def _comment_tokens(text: str) -> list[CommentToken]:
    tokens = []
    for line in text.splitlines():
        body = line.lstrip(" ")
        tokens.append(CommentToken(body + "\n", CommentMark(len(line) - len(body) if body else 0), None))
    return tokens


def _put_leading(node: CommentedMap | CommentedSeq, text: str) -> None:
    """Comment lines that go right before the first entry of `node`."""
    if node.ca.comment is None:
        node.ca.comment = [None, []]
    if node.ca.comment[1] is None:
        node.ca.comment[1] = []
    node.ca.comment[1].extend(_comment_tokens(text))


def _put_after_empty(parent: Parent, text: str) -> None:
    """Comment lines that follow an entry whose value is now an empty `{}` / `[]` (ruamel.yaml would write
    the entry's own trailing comments before the `{}`): they go before the next entry."""
    node, key = parent
    order = list(range(len(node))) if isinstance(node, CommentedSeq) else _own_keys(node)
    pos = order.index(key)
    if pos + 1 < len(order):
        entry = node.ca.items.setdefault(order[pos + 1], [None, None, None, None])
        slot = 1 if isinstance(node, CommentedMap) else 3
        entry[slot] = _comment_tokens(text) + (entry[slot] or [])
    elif pos > 0:
        _put_trailing(node, order[pos - 1], text)
    else:
        _put_leading(node, text)


def _take_leading(node: CommentedMap | CommentedSeq) -> str:
    """Detach the comment lines before the first entry of `node` (an emptied node cannot hold them)."""
    if node.ca.comment is None or not node.ca.comment[1]:
        return ""
    tokens, node.ca.comment[1] = node.ca.comment[1], []
    return "".join(t.value if t.value.startswith("\n") else " " * t.column + t.value for t in tokens)


def _append_entry(node: CommentedMap | CommentedSeq, key: Any, value: Any) -> None:
    """Append `key: value` (or a sequence item) after the last entry. Comment lines after the last entry
    that are indented less than the block belong to what follows it, so they move below the new entry."""
    last = _last_index(node)
    moved = _take_trailing(node, last, node.lc.col) if last is not None and not node.fa.flow_style() else ""
    if isinstance(node, CommentedSeq):
        node.append(value)
        key = len(node) - 1
    else:
        node[key] = value
    _put_trailing(node, key, moved)


def _delete_entry(node: CommentedMap | CommentedSeq, key: Any, parent: Parent | None) -> None:
    """Delete an entry; the comment lines that followed it stay where they were."""
    order = list(range(len(node))) if isinstance(node, CommentedSeq) else _own_keys(node)
    pos = order.index(key)
    moved = _take_trailing(node, key)
    del node[key]
    if not isinstance(node, CommentedSeq):
        node.ca.items.pop(key, None)
    if len(node) == 0:
        moved = _take_leading(node) + moved
    if not moved:
        return
    if pos > 0:
        _put_trailing(node, order[pos - 1], moved)
    elif len(node) > 0:
        _put_leading(node, moved)
    elif parent is not None:
        _put_after_empty(parent, moved)


def _set_value(node: CommentedMap, key: Any, value: Any) -> None:
    old = node[key]
    moved = _take_trailing(node, key) if _is_block(old) else ""
    node[key] = value  # CommentedMap keeps a quoted/literal style of an old string value
    _put_trailing(node, key, moved)


def _to_rt(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, CommentedMap):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _to_rt(v)
        return out
    if isinstance(value, list | tuple) and not isinstance(value, CommentedSeq):
        return CommentedSeq(_to_rt(v) for v in value)
    return value


def _dump(yaml: YAML, data: Any) -> str:
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def _lay_onto(original: str, base: str, edited: str) -> str:
    """Apply the change from `base` (ruamel.yaml's unedited round trip of `original`) to `edited` onto
    `original` itself, so that lines ruamel.yaml would only have reformatted stay byte-identical."""
    orig, old, new = _keepends(original), _keepends(base), _keepends(edited)
    to_orig = _align(orig, old)
    out: list[str] = []
    cursor = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        o1, o2 = max(to_orig[i1], cursor), max(to_orig[i2], cursor)
        out.extend(orig[cursor:o1])
        replacement = new[j1:j2]
        if o2 - o1 == len(replacement):
            replacement = [_keep_comment_gap(o, n) for o, n in zip(orig[o1:o2], replacement, strict=True)]
        out.extend(replacement)
        cursor = o2
    out.extend(orig[cursor:])
    return "".join(out)


def _align(orig: list[str], base: list[str]) -> list[int]:
    """For each line boundary of `base` (0..len), the matching line boundary of `orig`."""
    to_orig = [0] * (len(base) + 1)
    for _, o1, o2, b1, b2 in difflib.SequenceMatcher(None, orig, base, autojunk=False).get_opcodes():
        for k in range(b1, b2):
            to_orig[k] = o1 + min(k - b1, o2 - o1)
        to_orig[b2] = o2
    return to_orig


def _keep_comment_gap(original: str, edited: str) -> str:
    """`edited` with the original spacing before an end-of-line comment both lines share (ruamel.yaml keeps
    the comment's column instead). A wrong guess inside a quoted value is caught by the final check."""
    for m in re.finditer(r"[ \t]+(?=#)", edited):
        comment = edited[m.end() :]
        if original.endswith(comment) and len(original) > len(comment):
            before = original[: -len(comment)]
            gap = before[len(before.rstrip(" \t")) :]
            if gap:
                return edited[: m.start()] + gap + comment
    return edited


class _YamlEdit:
    """Load a YAML text, let the caller change `data`, then render it back onto the original text."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.doc = _load_yaml(text, name)
        self.yaml = _new_yaml(_detect_indent(self.doc.body))
        self.data = self.doc.data
        self.base = _dump(self.yaml, self.data) if self.data is not None else ""

    def render(self) -> str:
        doc = self.doc
        body = doc.body if not doc.body or doc.body.endswith("\n") else doc.body + "\n"
        edited = _dump(self.yaml, self.data)
        if doc.data is None:
            candidates = [body + edited]
        else:
            candidates = [_lay_onto(body, self.base, edited), edited]
        want = _plain(self.data)
        for candidate in candidates:
            if self._reads_as(candidate, want):
                text = doc.head + candidate + doc.tail
                if doc.eol == "\r\n":
                    text = text.replace("\r\n", "\n").replace("\n", "\r\n")
                return _match_final_newline(self.text, text, doc.eol)
        raise DeploymentFileError(f"{doc.name}: could not edit this file safely; please edit it by hand")

    def _reads_as(self, body: str, want: Any) -> bool:
        try:
            return _plain(_new_yaml().load(body)) == want
        except YAMLError:
            return False


# --------------------------------------------------------------------------------------------------- compose


def _service_map(data: Any, name: str) -> CommentedMap:
    if not isinstance(data, dict):
        raise DeploymentFileError(f"{name}: the top level is not a mapping")
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise DeploymentFileError(f"{name}: no `services:` found")
    return services


def _select_service(data: Any, service: str | None, name: str) -> str:
    services = _service_map(data, name)
    names = [str(k) for k in services]
    listed = ", ".join(names)
    if service is not None:
        if service not in services:
            raise DeploymentFileError(f"{name}: no service named {service!r} (services: {listed})")
        return service
    by_image = [
        str(k)
        for k, v in services.items()
        if isinstance(v, dict) and isinstance(v.get("image"), str) and "label-studio" in v["image"]
    ]
    if len(by_image) == 1:
        return by_image[0]
    pool = by_image or names
    by_name = [n for n in _SERVICE_NAMES if n in pool]
    if len(by_name) == 1:
        return by_name[0]
    raise DeploymentFileError(
        f"{name}: cannot tell which service runs Label Studio (services: {listed}); pass --compose-service NAME"
    )


def _compose_unescape(value: str, where: str = "") -> str:
    """`$$` -> `$` only: how the write side checks a value (the read side interpolates, _ComposeVariables)."""
    return value.replace("$$", "$")


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


def _interpolate(template: str, lookup: Lookup, where: str, unset: list[str] | None = None) -> str:
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
    arg = _interpolate(arg or "", lookup, where, unset)  # compose expands the arg whether it is used or not
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


class _ComposeVariables:
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
                self.dotenv = _read_compose_env_file(self.dotenv_path, os.environ.get, self.unset)
        return self.dotenv.get(name)

    def expand(self, value: str, where: str) -> str:
        return _interpolate(value, self.get, where, self.unset)


def _read_compose_env_file(path: StrPath, lookup: Lookup, unset: list[str] | None) -> dict[str, str]:
    """An env file as docker compose reads it (`env_file:`, `.env`): unquoted and double-quoted values
    interpolated from `lookup`, then from the file's own earlier lines; a bare `KEY` takes lookup's value."""
    name = os.fspath(path)
    out: dict[str, str] = {}

    def find(key: str) -> str | None:
        found = lookup(key)
        return found if found is not None else out.get(key)

    for number, ln in enumerate(_parse_env(read_text(path), name), start=1):
        if ln.key is None:
            continue
        if ln.value is None:
            inherited = lookup(ln.key)
            if inherited is not None:
                out[ln.key] = inherited
        elif ln.quote == "'":
            out[ln.key] = ln.value
        else:
            out[ln.key] = _interpolate(ln.value, find, f"{name} line {number}: {ln.key}", unset)
    return out


def _compose_scalar(value: Any, where: str, expand: Callable[[str, str], str] = _compose_unescape) -> str:
    if isinstance(value, bool | ScalarBoolean):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, str):
        return expand(str(value), where)
    raise DeploymentFileError(f"{where} must be a string, a number or a boolean")


def _compose_env(env: Any, where: str, expand: Callable[[str, str], str] = _compose_unescape,
                 inherit: Lookup | None = None) -> dict[str, str]:
    """The `environment:` entries; `expand` reads a value, `inherit` gives an entry without a value its
    value (None: such entries are left out)."""
    out: dict[str, str] = {}
    if env is None:
        return out
    if isinstance(env, dict):
        for key, value in env.items():
            if value is not None:
                out[str(key)] = _compose_scalar(value, f"{where}.{key}", expand)
            elif inherit is not None and (found := inherit(str(key))) is not None:
                out[str(key)] = found
        return out
    if isinstance(env, list):
        for item in env:
            if not isinstance(item, str):
                raise DeploymentFileError(f"{where}: every list entry must be a KEY=VALUE string")
            key, sep, value = item.partition("=")
            if sep:
                out[key] = expand(value, f"{where}.{key}")
            elif inherit is not None and (found := inherit(key)) is not None:
                out[key] = found
        return out
    raise DeploymentFileError(f"{where} must be a list or a mapping")


def _compose_env_files(entries: Any, base: Path, where: str, variables: _ComposeVariables) -> dict[str, str]:
    """The variables of a service's `env_file:` entries (later files win), paths relative to the compose file.
    Each file is interpolated from the earlier files' variables, then the compose variables (compose-go
    WithServicesEnvironmentResolved)."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        entries = [entries]
    out: dict[str, str] = {}

    def lookup(key: str) -> str | None:
        return out[key] if key in out else variables.get(key)

    for entry in entries:
        required = True
        if isinstance(entry, dict):  # the long form: {path: ..., required: false}
            required = _plain(entry.get("required", True)) is not False
            entry = entry.get("path")
        if not isinstance(entry, str) or not entry:
            raise DeploymentFileError(f"{where}: every entry must be a path")
        path = base / os.path.expanduser(variables.expand(entry, where))
        if not required and not path.exists():
            continue
        try:
            out.update(_read_compose_env_file(path, lookup, variables.unset))
        except DeploymentFileError as exc:
            raise DeploymentFileError(f"{where}: {exc}") from None
    return out


def read_compose_environment(path: StrPath, service: str | None = None, *,
                             unset: list[str] | None = None) -> dict[str, str]:
    """What the Label Studio service's container sees: its `env_file:` entries, then `environment:` over them,
    interpolated as docker compose does (the process environment, then the `.env` next to the compose file).
    Each variable used unset is noted in `unset` (when given), as compose warns of it."""
    doc = _load_yaml_file(path)
    chosen = _select_service(doc.data, service, doc.name)
    svc = _service_map(doc.data, doc.name)[chosen]
    where = f"{doc.name}: services.{chosen}"
    if svc is None:
        return {}
    if not isinstance(svc, dict):
        raise DeploymentFileError(f"{doc.name}: services.{chosen} is not a mapping")
    variables = _ComposeVariables(path, unset)
    found = _compose_env_files(svc.get("env_file"), Path(path).parent, f"{where}.env_file", variables)
    found.update(_compose_env(svc.get("environment"), f"{where}.environment", variables.expand, variables.get))
    return found


def _compose_escape(value: str) -> str:
    return value.replace("$", "$$")


def _update_env_seq(env: CommentedSeq, changes: Mapping[str, str | None], parent: Parent, where: str) -> None:
    found: set[str] = set()
    for i in reversed(range(len(env))):
        item = env[i]
        if not isinstance(item, str):
            raise DeploymentFileError(f"{where}: every list entry must be a KEY=VALUE string")
        key = item.partition("=")[0]
        if key not in changes:
            continue
        found.add(key)
        new = changes[key]
        if new is None:
            _delete_entry(env, i, parent)
        else:
            env[i] = f"{key}={_compose_escape(new)}"  # CommentedSeq keeps the item's quoting style
    for key, new in changes.items():
        if new is not None and key not in found:
            _append_entry(env, None, f"{key}={_compose_escape(new)}")


def _update_env_map(env: CommentedMap, changes: Mapping[str, str | None], parent: Parent, where: str) -> None:
    own = set(_own_keys(env))
    for key, new in changes.items():
        if new is None:
            if key in env and key not in own:
                raise DeploymentFileError(f"{where}.{key} comes from a YAML merge key (<<); edit it by hand")
            if key in own:
                _delete_entry(env, key, parent)
        elif key in own:
            env[key] = _compose_escape(new)  # CommentedMap keeps a quoted style
        else:
            _append_entry(env, key, _compose_escape(new))


def update_compose_text(
    text: str,
    changes: Mapping[str, str | None],
    *,
    service: str | None = None,
    name: str = "compose file",
) -> str:
    _check_env_changes(changes, name)
    edit = _YamlEdit(text, name)
    chosen = _select_service(edit.data, service, name)
    services = _service_map(edit.data, name)
    where = f"{name}: services.{chosen}.environment"
    svc = services[chosen]
    if svc is None:
        svc = services[chosen] = CommentedMap()
    if not isinstance(svc, CommentedMap):
        raise DeploymentFileError(f"{name}: services.{chosen} is not a mapping")
    env = svc.get("environment")
    _compose_env(env, where)  # validates
    if getattr(env, "anchor", None) is not None and env.anchor.value is not None:
        raise DeploymentFileError(f"{where} is shared through a YAML anchor (&{env.anchor.value}); edit it by hand")
    parent: Parent = (svc, "environment")
    if env is None:
        added = CommentedMap((k, _compose_escape(v)) for k, v in changes.items() if v is not None)
        if not added:
            return text
        if "environment" in svc:
            _set_value(svc, "environment", added)
        else:
            _append_entry(svc, "environment", added)
    elif isinstance(env, CommentedSeq):
        _update_env_seq(env, changes, parent, where)
    else:
        _update_env_map(env, changes, parent, where)
    return edit.render()


# ------------------------------------------------------------------------------------------------------ Helm


def read_helm_values(path: StrPath) -> dict[str, Any]:
    """The plain content of `global.persistence` ({} if absent)."""
    doc = _load_yaml_file(path)
    data = doc.data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DeploymentFileError(f"{doc.name}: the top level is not a mapping")
    node: Any = data
    for i, part in enumerate(("global", "persistence")):
        node = node.get(part)
        if node is None:
            return {}
        if not isinstance(node, dict):
            dotted = ".".join(("global", "persistence")[: i + 1])
            raise DeploymentFileError(f"{doc.name}: {dotted} is not a mapping")
    return _plain(node)


def _split_path(path: str, name: str) -> list[str]:
    parts = path.split(".")
    if not all(parts):
        raise DeploymentFileError(f"{name}: invalid key path {path!r}")
    return parts


def _nest(parts: list[str], value: Any) -> Any:
    for part in reversed(parts):
        node = CommentedMap()
        node[part] = value
        value = node
    return value


def _helm_set(root: CommentedMap, parts: list[str], value: Any, name: str) -> None:
    node = root
    for i, part in enumerate(parts[:-1]):
        if part not in node:
            _append_entry(node, part, _nest(parts[i + 1 :], value))
            return
        child = node[part]
        if child is None:
            _set_value(node, part, _nest(parts[i + 1 :], value))
            return
        if not isinstance(child, CommentedMap):
            raise DeploymentFileError(f"{name}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = child
    if parts[-1] in node:
        _set_value(node, parts[-1], value)
    else:
        _append_entry(node, parts[-1], value)


def _helm_remove(root: CommentedMap, parts: list[str]) -> None:
    node: Any = root
    parent: Parent | None = None
    for part in parts[:-1]:
        if not isinstance(node, CommentedMap) or part not in node:
            return
        parent, node = (node, part), node[part]
    if isinstance(node, CommentedMap) and parts[-1] in _own_keys(node):
        _delete_entry(node, parts[-1], parent)


def update_helm_values_text(text: str, changes: Mapping[str, object | None], *, name: str = "values file") -> str:
    edit = _YamlEdit(text, name)
    if edit.data is None:
        edit.data = CommentedMap()
    if not isinstance(edit.data, CommentedMap):
        raise DeploymentFileError(f"{name}: the top level is not a mapping")
    for path, value in changes.items():
        parts = _split_path(path, name)
        if value is None:
            _helm_remove(edit.data, parts)
        else:
            _helm_set(edit.data, parts, _to_rt(value), name)
    return edit.render()


def unified_diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(_keepends(old), _keepends(new), fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
