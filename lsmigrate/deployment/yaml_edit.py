"""Editing a YAML deployment file so that only the lines an edit has to change change.

Entries are added, replaced and deleted on ruamel.yaml's round-trip data, carrying the comment lines around
them to where a reader expects them; the result is then laid back onto the original text, so that every line
ruamel.yaml would merely have reformatted stays byte-identical, and is only used if it reads as intended.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from .text import DeploymentFileError, keepends, match_final_newline
from .yaml_load import detect_indent, load_yaml, new_yaml, plain

Parent = tuple[CommentedMap | CommentedSeq, Any]


def own_keys(node: CommentedMap) -> list[Any]:
    return [k for k, _ in node.non_merged_items()]


def _is_block(node: Any) -> bool:
    return isinstance(node, CommentedMap | CommentedSeq) and len(node) > 0 and not node.fa.flow_style()


def _last_index(node: CommentedMap | CommentedSeq) -> Any:
    if isinstance(node, CommentedSeq):
        return len(node) - 1 if node else None
    keys = own_keys(node)
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
    lines = keepends(text)
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
    order = list(range(len(node))) if isinstance(node, CommentedSeq) else own_keys(node)
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


def append_entry(node: CommentedMap | CommentedSeq, key: Any, value: Any) -> None:
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


def delete_entry(node: CommentedMap | CommentedSeq, key: Any, parent: Parent | None) -> None:
    """Delete an entry; the comment lines that followed it stay where they were."""
    order = list(range(len(node))) if isinstance(node, CommentedSeq) else own_keys(node)
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


def set_value(node: CommentedMap, key: Any, value: Any) -> None:
    old = node[key]
    moved = _take_trailing(node, key) if _is_block(old) else ""
    node[key] = value  # CommentedMap keeps a quoted/literal style of an old string value
    _put_trailing(node, key, moved)


def to_round_trip(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, CommentedMap):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = to_round_trip(v)
        return out
    if isinstance(value, list | tuple) and not isinstance(value, CommentedSeq):
        return CommentedSeq(to_round_trip(v) for v in value)
    return value


def _dump(yaml: YAML, data: Any) -> str:
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def _lay_onto(original: str, base: str, edited: str) -> str:
    """Apply the change from `base` (ruamel.yaml's unedited round trip of `original`) to `edited` onto
    `original` itself, so that lines ruamel.yaml would only have reformatted stay byte-identical."""
    orig, old, new = keepends(original), keepends(base), keepends(edited)
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


class YamlEdit:
    """Load a YAML text, let the caller change `data`, then render it back onto the original text."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.doc = load_yaml(text, name)
        self.yaml = new_yaml(detect_indent(self.doc.body))
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
        want = plain(self.data)
        for candidate in candidates:
            if self._reads_as(candidate, want):
                text = doc.head + candidate + doc.tail
                if doc.eol == "\r\n":
                    text = text.replace("\r\n", "\n").replace("\n", "\r\n")
                return match_final_newline(self.text, text, doc.eol)
        raise DeploymentFileError(f"{doc.name}: could not edit this file safely; please edit it by hand")

    def _reads_as(self, body: str, want: Any) -> bool:
        try:
            return plain(new_yaml().load(body)) == want
        except YAMLError:
            return False

