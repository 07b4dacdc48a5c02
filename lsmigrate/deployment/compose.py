"""docker-compose.yml: what the Label Studio service's container sees (`env_file:` entries, then
`environment:`, interpolated as docker compose does), and editing that service's `environment:`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarbool import ScalarBoolean

from .compose_variables import ComposeVariables, Lookup, read_compose_env_file
from .envfile import check_env_changes
from .text import DeploymentFileError, StrPath
from .yaml_edit import Parent, YamlEdit, append_entry, delete_entry, own_keys, set_value
from .yaml_load import load_yaml_file, plain

# Names of the service that runs Label Studio, tried when no image names it unambiguously.
_SERVICE_NAMES = ("app", "label-studio", "labelstudio")


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
    """`$$` -> `$` only: how the write side checks a value (the read side interpolates, ComposeVariables)."""
    return value.replace("$$", "$")


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


def _compose_env_files(entries: Any, base: Path, where: str, variables: ComposeVariables) -> dict[str, str]:
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
            required = plain(entry.get("required", True)) is not False
            entry = entry.get("path")
        if not isinstance(entry, str) or not entry:
            raise DeploymentFileError(f"{where}: every entry must be a path")
        path = base / os.path.expanduser(variables.expand(entry, where))
        if not required and not path.exists():
            continue
        try:
            out.update(read_compose_env_file(path, lookup, variables.unset))
        except DeploymentFileError as exc:
            raise DeploymentFileError(f"{where}: {exc}") from None
    return out


def read_compose_environment(path: StrPath, service: str | None = None, *,
                             unset: list[str] | None = None) -> dict[str, str]:
    """What the Label Studio service's container sees: its `env_file:` entries, then `environment:` over them,
    interpolated as docker compose does (the process environment, then the `.env` next to the compose file).
    Each variable used unset is noted in `unset` (when given), as compose warns of it."""
    doc = load_yaml_file(path)
    chosen = _select_service(doc.data, service, doc.name)
    svc = _service_map(doc.data, doc.name)[chosen]
    where = f"{doc.name}: services.{chosen}"
    if svc is None:
        return {}
    if not isinstance(svc, dict):
        raise DeploymentFileError(f"{doc.name}: services.{chosen} is not a mapping")
    variables = ComposeVariables(path, unset)
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
            delete_entry(env, i, parent)
        else:
            env[i] = f"{key}={_compose_escape(new)}"  # CommentedSeq keeps the item's quoting style
    for key, new in changes.items():
        if new is not None and key not in found:
            append_entry(env, None, f"{key}={_compose_escape(new)}")


def _update_env_map(env: CommentedMap, changes: Mapping[str, str | None], parent: Parent, where: str) -> None:
    own = set(own_keys(env))
    for key, new in changes.items():
        if new is None:
            if key in env and key not in own:
                raise DeploymentFileError(f"{where}.{key} comes from a YAML merge key (<<); edit it by hand")
            if key in own:
                delete_entry(env, key, parent)
        elif key in own:
            env[key] = _compose_escape(new)  # CommentedMap keeps a quoted style
        else:
            append_entry(env, key, _compose_escape(new))


def update_compose_text(
    text: str,
    changes: Mapping[str, str | None],
    *,
    service: str | None = None,
    name: str = "compose file",
) -> str:
    check_env_changes(changes, name)
    edit = YamlEdit(text, name)
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
            set_value(svc, "environment", added)
        else:
            append_entry(svc, "environment", added)
    elif isinstance(env, CommentedSeq):
        _update_env_seq(env, changes, parent, where)
    else:
        _update_env_map(env, changes, parent, where)
    return edit.render()

