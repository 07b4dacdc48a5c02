"""The settings a deployment's files give Label Studio, over the process environment: what lsmigrate takes the
destination, its credentials and the rest from."""

from __future__ import annotations

import os
import re
import sys

from ..labelstudio import ENV_PREFIXES
from .kinds import FileKind, given
from .text import DeploymentFileError, read_text


def _bare(name: str) -> str:
    """A setting's name without Label Studio's LABEL_STUDIO_/HEARTEX_ prefix."""
    for prefix in ENV_PREFIXES:
        if prefix and name.startswith(prefix):
            return name[len(prefix):]
    return name


# What lsmigrate takes the destination from (bucket, folder, endpoint, region, credentials), without Label
# Studio's LABEL_STUDIO_/HEARTEX_ prefix.
DESTINATION_PREFIXES = ("STORAGE_", "AWS_", "AZURE_", "GOOGLE_")
_DIFFERENCE_RE = re.compile(r"lines? [0-9, ]+ \((?P<key>[^)]+)\): ")
_warned: set[str] = set()


def _warn(line: str) -> None:
    """A warning on stderr, once per process (the deployment file is read several times in one command)."""
    if line not in _warned:
        _warned.add(line)
        print(f"lsmigrate: warning: {line}", file=sys.stderr)


def check_reading(kind: FileKind, path: str) -> None:
    """Refuse a file in which a variable lsmigrate takes the destination from reads differently under the
    file's readers (an env file's: `docker run --env-file` and docker compose; lsmigrate cannot know which of
    them reads the file, so it could copy, verify and switch to a place Label Studio never reads); warn of
    any other such variable."""
    if kind.misread is None:
        return
    text = read_text(path)
    refused: list[tuple[str, str]] = []
    for line in kind.misread(text, path):
        m = _DIFFERENCE_RE.match(line.removeprefix(f"{path} "))
        key = m["key"] if m else ""
        if _bare(key).startswith(DESTINATION_PREFIXES):
            refused.append((key, line))
        else:
            _warn(line)
    if refused:
        key, line = refused[0]
        more = f" (also {', '.join(k for k, _ in refused[1:])})" if len(refused) > 1 else ""
        raise DeploymentFileError(
            f"{line}{more}. lsmigrate takes the destination from it and cannot tell which of the two reads this "
            f"file: write it bare as `{key}=value` (no quotes, no spaces around '=', a comment on a line of its "
            f"own), or, for a value no bare line carries alike, leave a bare `{key}` line and pass the value in "
            "the environment that starts Label Studio")


def file_variables(*, env_file: str | None = None, compose: str | None = None,
                   compose_service: str | None = None) -> dict[str, str] | None:
    """The variables the deployment file itself gives Label Studio; None when no file is given."""
    files = given(env_file=env_file, compose=compose)
    if not files:
        return None
    found: dict[str, str] = {}
    for kind, path in files:
        unset: list[str] = []
        found.update(kind.read(path, compose_service, unset))
        check_reading(kind, path)
        for line in unset:
            _warn(line)
    return found


def deployment_settings(*, env_file: str | None = None, compose: str | None = None,
                        compose_service: str | None = None) -> dict[str, str]:
    """The process environment overlaid with the deployment file's variables.

    The file is what Label Studio reads: a setting it names hides every other spelling of that setting in
    the environment (else a LABEL_STUDIO_ one there would win), and STORAGE_TYPE comes from the file alone.
    """
    own = file_variables(env_file=env_file, compose=compose, compose_service=compose_service)
    if own is None:
        return dict(os.environ)
    hidden = {_bare(name) for name in own} | {"STORAGE_TYPE"}
    settings = {name: value for name, value in os.environ.items() if _bare(name) not in hidden}
    settings.update(own)
    return settings
