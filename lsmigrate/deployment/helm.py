"""Helm values: the chart's `global.persistence` as it stands, and setting or removing keys by dotted path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ruamel.yaml.comments import CommentedMap

from .text import DeploymentFileError, StrPath
from .yaml_edit import Parent, YamlEdit, append_entry, delete_entry, own_keys, set_value, to_round_trip
from .yaml_load import load_yaml_file, plain


def read_helm_values(path: StrPath) -> dict[str, Any]:
    """The plain content of `global.persistence` ({} if absent)."""
    doc = load_yaml_file(path)
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
    return plain(node)


def flatten(tree: Mapping, prefix: str = "") -> dict[str, object]:
    """A nested mapping as dotted path -> value."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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
            append_entry(node, part, _nest(parts[i + 1 :], value))
            return
        child = node[part]
        if child is None:
            set_value(node, part, _nest(parts[i + 1 :], value))
            return
        if not isinstance(child, CommentedMap):
            raise DeploymentFileError(f"{name}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = child
    if parts[-1] in node:
        set_value(node, parts[-1], value)
    else:
        append_entry(node, parts[-1], value)


def _helm_remove(root: CommentedMap, parts: list[str]) -> None:
    node: Any = root
    parent: Parent | None = None
    for part in parts[:-1]:
        if not isinstance(node, CommentedMap) or part not in node:
            return
        parent, node = (node, part), node[part]
    if isinstance(node, CommentedMap) and parts[-1] in own_keys(node):
        delete_entry(node, parts[-1], parent)


def update_helm_values_text(text: str, changes: Mapping[str, object | None], *, name: str = "values file") -> str:
    edit = YamlEdit(text, name)
    if edit.data is None:
        edit.data = CommentedMap()
    if not isinstance(edit.data, CommentedMap):
        raise DeploymentFileError(f"{name}: the top level is not a mapping")
    for path, value in changes.items():
        parts = _split_path(path, name)
        if value is None:
            _helm_remove(edit.data, parts)
        else:
            _helm_set(edit.data, parts, to_round_trip(value), name)
    return edit.render()

