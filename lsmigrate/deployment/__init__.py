"""Read and edit a Label Studio deployment's own configuration files (env file, docker-compose.yml, Helm
values), keeping comments, order, quoting and layout; write them with a backup, and roll back.

Edits never touch a line they do not have to: env files are edited line by line, and a line that is
written takes the one form `docker run --env-file` and docker compose read alike; YAML is edited with
ruamel.yaml in round-trip mode and the result is laid back onto the original text, so that every line
ruamel.yaml would merely have reformatted stays byte-identical.

Writing a file with a backup, and rolling back, is deployment.backups' (imported on its own: most commands
never write a deployment file). The YAML readers and editors (and ruamel.yaml) load on first use of their names.
"""

from .envfile import read_env_file, update_env_text
from .kinds import KIND, KINDS, FileKind
from .text import DeploymentFileError, StrPath, read_text, unified_diff

__all__ = [
    "KIND", "KINDS", "DeploymentFileError", "FileKind", "StrPath", "read_compose_environment", "read_env_file",
    "read_helm_values", "read_text", "unified_diff", "update_compose_text", "update_env_text",
    "update_helm_values_text",
]


def __getattr__(name: str):
    if name in ("read_compose_environment", "update_compose_text"):
        from . import compose

        return getattr(compose, name)
    if name in ("read_helm_values", "update_helm_values_text"):
        from . import helm

        return getattr(helm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
