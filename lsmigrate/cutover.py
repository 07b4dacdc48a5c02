"""The switch: point the deployment's own file at the bucket, only once every file is verified there.

The edit itself is the deployment package's (comments, order and quoting kept, backup, atomic replace); this
module decides which keys change, and what the operator does next.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import redact
from .deployment.kinds import KIND, VARIABLES, given, options
from .deployment.text import read_text, unified_diff
from .labelstudio import ENV_PREFIXES, get_env
from .stores.registry import record_for
from .target import Target, TargetError

NGINX_VARIABLES = {"USE_NGINX_FOR_UPLOADS": "false", "USE_NGINX_FOR_EXPORT_DOWNLOADS": "false"}
_NGINX_OFF = re.compile(r"USE_NGINX_FOR_UPLOADS[\"']?\s*[:=]\s*[\"']?(false|0|no)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Edit:
    path: Path
    kind: str  # a deployment.KINDS name: env | compose | values
    old_text: str
    new_text: str
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values to mask wherever they show

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text

    def diff(self) -> str:
        """The change as a unified diff, every secret masked: by name on its own line, by value wherever it
        stands (a YAML block scalar puts the value on the next line; JSON values nest keys), and by shape."""
        return redact.scrub(unified_diff(self.old_text, self.new_text, self.path.name), self.secrets)


def storage_variables(target: Target, settings: Mapping[str, str]) -> dict[str, str]:
    """STORAGE_TYPE and the provider's variables, with the names Label Studio reads (core/storage.py).

    Credentials are written only when the operator passed them in Label Studio's own variables; a
    deployment that relies on an IAM role or workload identity keeps doing so.
    """
    record = record_for(target.provider)
    values: dict[str, str | None] = {"STORAGE_TYPE": target.provider, **record.write_settings(target)}
    for name in record.written_secrets:
        if settings.get(name):
            values[name] = settings[name]
    return {name: value for name, value in values.items() if value not in (None, "") or name.endswith("_FOLDER")}


def _effective_names(existing: Mapping[str, str], variables: Mapping[str, str]) -> dict[str, str]:
    """Change the name Label Studio would actually read: a LABEL_STUDIO_/HEARTEX_ form already in the file wins."""
    renamed = {}
    for name, value in variables.items():
        chosen = name
        for prefix in ENV_PREFIXES:
            if prefix + name in existing:
                chosen = prefix + name
                break
        renamed[chosen] = value
    return renamed


def helm_changes(target: Target) -> dict[str, object | None]:
    """`global.persistence.*` for the chart; secrets by reference stay by reference, none are added inline."""
    base = f"global.persistence.config.{target.provider}"
    changes: dict[str, object | None] = {"global.persistence.enabled": True, "global.persistence.type": target.provider}
    changes.update({f"{base}.{key}": value for key, value in record_for(target.provider).write_helm(target).items()})
    return changes


def prepare(target: Target, settings: Mapping[str, str], *, env_file: str | None = None, compose: str | None = None,
            compose_service: str | None = None, values: str | None = None, no_nginx: bool = False) -> Edit:
    """The edit that switches the deployment to `target` (not written yet)."""
    chosen = given(env_file=env_file, compose=compose, values=values)
    if len(chosen) != 1:
        raise TargetError(f"cutover edits one file: pass exactly one of {options()}")
    kind, name = chosen[0]
    path = Path(name)
    old = read_text(path)
    variables = storage_variables(target, settings)
    if no_nginx:
        variables.update(NGINX_VARIABLES)
    secrets = {s for name, value in {**settings, **variables}.items() for s in redact.secrets_in(name, value)}
    current = kind.read(path, compose_service, None)
    if kind.holds == VARIABLES:
        changes: Mapping[str, object | None] = _effective_names(current, _needed(current, variables))
    else:
        chart = helm_changes(target)
        if no_nginx:
            chart.update({f"global.extraEnvironmentVars.{key}": value for key, value in NGINX_VARIABLES.items()})
        changes = chart
    new = kind.update(old, changes, compose_service, name)
    secrets |= {s for name, value in current.items() for s in redact.secrets_in(name, value)}
    return Edit(path, kind.name, old, new, tuple(s for s in secrets if len(s) >= 4))


def _needed(current: Mapping[str, str], variables: Mapping[str, str]) -> dict[str, str]:
    """Only what changes what Label Studio reads: a file prepared for the switch keeps its lines, and a
    secret kept in a compose `env_file:` is not copied into the compose file."""
    return {name: value for name, value in variables.items() if get_env(name, current) != value}


def next_steps(edit: Edit, target: Target) -> list[str]:
    kind = KIND[edit.kind]
    steps = kind.misread(edit.new_text, edit.path.name) if kind.misread else []
    steps += kind.apply_steps(edit.path)
    if not _NGINX_OFF.search(edit.new_text):
        steps.append("Label Studio now hands uploads, avatars and exports to the nginx of its Docker image "
                     "(X-Accel-Redirect). Without that nginx in front (`label-studio start`, a custom image, a "
                     "plain proxy) they come out empty, as broken images: then set USE_NGINX_FOR_UPLOADS=false "
                     f"and USE_NGINX_FOR_EXPORT_DOWNLOADS=false (the same `lsmigrate cutover --{kind.option} "
                     f"{edit.path}` again with --no-nginx writes them).")
    steps.append("For direct browser uploads and media the browser fetches (audio, video), the bucket needs the "
                 "CORS rule from Label Studio's persistent storage guide (`lsmigrate doctor --apply-cors` sets it).")
    steps.append(f"To undo: `lsmigrate cutover --rollback --{kind.option} {edit.path}` (one switch "
                 "per run, back to the original; `--rollback --list` shows them).")
    return steps
