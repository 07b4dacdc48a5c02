"""Loading a YAML deployment file with ruamel.yaml in round-trip mode: the document apart from what ruamel.yaml
drops (comments before `---`, a closing `...`), its data, its plain Python form, and its own indentation.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from .text import DeploymentFileError, StrPath, eol_of, read_text


@dataclass(frozen=True)
class YamlDoc:
    """A YAML file split into the part ruamel.yaml edits (`body`, "\\n" line ends) and the verbatim rest."""

    name: str
    head: str  # comments and a `---` line before the document, kept verbatim (ruamel.yaml drops them)
    body: str
    tail: str  # a closing `...` line and what follows it
    eol: str
    data: Any


_DOC_START_RE = re.compile(r"---[ \t]*(#.*)?")
_DOC_END_RE = re.compile(r"\.\.\.[ \t]*(#.*)?")
_COMPOSE_ENV = re.compile(r"services\.[^.]+\.environment\.")


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


def new_yaml(indent: tuple[int, int, int] = (2, 4, 2)) -> YAML:
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


def load_yaml(text: str, name: str) -> YamlDoc:
    head, body, tail = _split_document(text)
    try:
        data = new_yaml().load(body)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if isinstance(exc, MarkedYAMLError) and mark is not None:
            line = mark.line + 1 + head.count("\n")
            raise DeploymentFileError(f"{name} line {line}: invalid YAML: {_yaml_problem(exc)}") from None
        raise DeploymentFileError(f"{name}: invalid YAML: {_yaml_problem(exc)}") from None
    return YamlDoc(name, head, body, tail, eol_of(text), data)


def load_yaml_file(path: StrPath) -> YamlDoc:
    return load_yaml(read_text(path), os.fspath(path))


def plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {_plain_key(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
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
    value = plain(key)
    return repr(value) if isinstance(value, dict | list) else value


def _flat(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    if isinstance(node, list):
        if node and all(isinstance(item, str) and "=" in item for item in node):  # compose `KEY=value` list
            return {f"{prefix}{k}": v for k, _, v in (item.partition("=") for item in node)}
        return {k: v for i, value in enumerate(node) for k, v in _flat(value, f"{prefix}{i}.").items()}
    if isinstance(node, bool):
        return {prefix[:-1]: "true" if node else "false"}
    return {prefix[:-1]: "null" if node is None else str(node)}


def yaml_text_settings(text: str) -> dict[str, str]:
    """Every value of a YAML text by its dotted path, a compose service's environment entries by their
    variable's name alone (what a switch's record compares)."""
    data = plain(load_yaml(text, "file").data)
    return {} if data is None else {_COMPOSE_ENV.sub("", k): v for k, v in _flat(data).items()}


def detect_indent(body: str) -> tuple[int, int, int]:
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


