"""The kinds of deployment file lsmigrate reads and switches, one record each, and the one registry the CLI,
the cutover, target resolution and the switch records loop over. A new format is one more record here (with
its reader and editor in a module of its own).

The YAML kinds' modules (and ruamel.yaml with them) are imported when a YAML file is read or edited, not
with the registry: a copy to a URL or with an env file never needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import envfile_rules
from .envfile import env_text_settings, read_env_file, update_env_text
from .text import StrPath

# What a file's settings are: Label Studio's variables, which name the storage as Label Studio reads it, or
# the Helm chart's values (`global.persistence.*`), from which the chart sets those variables.
VARIABLES = "Label Studio variables"
CHART_VALUES = "Helm chart values"


@dataclass(frozen=True)
class FileKind:
    name: str  # how an edit and its JSON document name the kind
    keyword: str  # the keyword argument (and the CLI's parameter) that names a file of this kind
    option: str  # the CLI option, without "--"
    option_help: str  # the CLI option's help
    holds: str  # VARIABLES or CHART_VALUES
    # (path, compose service, a list for notes of variables used unset or None) -> what the file sets, by name:
    # a variable's, or a chart value's dotted path
    read: Callable[[StrPath, str | None, list[str] | None], dict[str, Any]]
    # (text, changes by the names `read` gives, None removing one, compose service, file name) -> the new text
    update: Callable[[str, Mapping[str, Any], str | None, str], str]
    text_settings: Callable[[str], dict[str, str]]  # every setting of a text, as a switch's record compares them
    # (text, name) -> the lines that the file's readers read differently; None: the file has one reader
    misread: Callable[[str, str], list[str]] | None
    apply_steps: Callable[[Path], list[str]]  # what the operator runs to put the switched file into effect


def _read_env(path: StrPath, service: str | None, unset: list[str] | None) -> dict[str, Any]:
    return read_env_file(path)


def _update_env(text: str, changes: Mapping[str, Any], service: str | None, name: str) -> str:
    return update_env_text(text, changes, name=name)


def _apply_env(path: Path) -> list[str]:
    return [f"Restart Label Studio with the new file, e.g. `docker run ... --env-file {path} ...` (stop the old "
            "container first)."]


def _read_compose(path: StrPath, service: str | None, unset: list[str] | None) -> dict[str, Any]:
    from .compose import read_compose_environment

    return read_compose_environment(path, service, unset=unset)  # env_file: entries included


def _update_compose(text: str, changes: Mapping[str, Any], service: str | None, name: str) -> str:
    from .compose import update_compose_text

    return update_compose_text(text, changes, service=service, name=name)


def _apply_compose(path: Path) -> list[str]:
    return [f"Apply it: `docker compose -f {path} up -d`."]


def _read_values(path: StrPath, service: str | None, unset: list[str] | None) -> dict[str, Any]:
    from .helm import flatten, read_helm_values

    return flatten(read_helm_values(path))  # malformed YAML stops here, with its line


def _update_values(text: str, changes: Mapping[str, Any], service: str | None, name: str) -> str:
    from .helm import update_helm_values_text

    return update_helm_values_text(text, changes, name=name)


def _yaml_text_settings(text: str) -> dict[str, str]:
    from .yaml_load import yaml_text_settings

    return yaml_text_settings(text)


def _apply_values(path: Path) -> list[str]:
    return [f"Apply it: `helm upgrade <release> heartex/label-studio -f {path}`.",
            "After this upgrade the chart no longer mounts the data PVC (it becomes an emptyDir): keep the PVC "
            "until you have checked Label Studio serves every file from the bucket."]


ENV = FileKind(
    name="env", keyword="env_file", option="env-file", holds=VARIABLES,
    option_help="Label Studio's docker env.list to read the target from.",
    read=_read_env, update=_update_env, text_settings=env_text_settings,
    # Lines lsmigrate wrote read alike; lines it left alone may not, and docker run would misread those.
    misread=envfile_rules.differences, apply_steps=_apply_env)
COMPOSE = FileKind(
    name="compose", keyword="compose", option="compose", holds=VARIABLES,
    option_help="docker-compose.yml whose Label Studio service sets the target.",
    read=_read_compose, update=_update_compose, text_settings=_yaml_text_settings,
    misread=None, apply_steps=_apply_compose)
VALUES = FileKind(
    name="values", keyword="values", option="values", holds=CHART_VALUES,
    option_help="Helm values file (global.persistence.*) to read the target from.",
    read=_read_values, update=_update_values, text_settings=_yaml_text_settings,
    misread=None, apply_steps=_apply_values)

# In this order: a switch's record is read as the first kind that reads it (a YAML file does not read as an
# env file, while an env file may read as one long YAML string), and the first variables file given names
# where the settings come from.
KINDS = (ENV, COMPOSE, VALUES)
KIND = {kind.name: kind for kind in KINDS}


def given(**paths: str | None) -> list[tuple[FileKind, str]]:
    """The deployment files named in `paths` (by each kind's keyword, None or "" for none), in registry order."""
    return [(kind, path) for kind in KINDS if (path := paths.get(kind.keyword))]


def options() -> str:
    """`--env-file, --compose or --values`."""
    names = [f"--{kind.option}" for kind in KINDS]
    return f"{', '.join(names[:-1])} or {names[-1]}"
