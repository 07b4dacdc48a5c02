"""What Label Studio keeps where: the base data dir, the media tree, and the names of its settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIXES = ("LABEL_STUDIO_", "HEARTEX_", "")
DATABASE_NAME = "label_studio.sqlite3"
MEDIA_DIR = "media"
LEGACY_EXPORT_DIR = "export"
# Any of these under a directory says "this is a Label Studio base data dir".
_MARKERS = (DATABASE_NAME, MEDIA_DIR)


class NotADataDir(Exception):
    """The directory given is not a Label Studio base data dir (one line, says what to pass instead)."""


def get_env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Label Studio's get_env: LABEL_STUDIO_<NAME>, then HEARTEX_<NAME>, then <NAME>."""
    environ = os.environ if environ is None else environ
    for prefix in ENV_PREFIXES:
        value = environ.get(prefix + name)
        if value is not None:
            return value
    return None


def default_base_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where Label Studio itself would put its data, given this environment."""
    environ = os.environ if environ is None else environ
    configured = get_env("BASE_DATA_DIR", environ)
    if configured:
        return Path(configured).expanduser()
    xdg = environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "label-studio"
    return Path(environ.get("HOME", str(Path.home()))) / ".local" / "share" / "label-studio"


@dataclass(frozen=True)
class DataDir:
    """A Label Studio base data dir: `media/` is what moves; the database and `export/` never do by default.

    `media` may itself be a symlink (a volume or PVC mounted elsewhere): it is the tree's root and is
    followed; links below it, such as `media/upload` on another disk, need --copy-links (lsmigrate.scan)."""

    base: Path

    @property
    def media(self) -> Path:
        return self.base / MEDIA_DIR

    @property
    def legacy_export(self) -> Path:
        return self.base / LEGACY_EXPORT_DIR

    @property
    def database(self) -> Path:
        return self.base / DATABASE_NAME


def is_data_dir(path: Path) -> bool:
    # lexists: a `media` link to a disk that is not mounted still marks the data dir (find_data_dir says so)
    return path.is_dir() and any(os.path.lexists(path / marker) for marker in _MARKERS)


def find_data_dir(given: str | os.PathLike | None, environ: Mapping[str, str] | None = None) -> DataDir:
    """`--data-dir`, else LABEL_STUDIO_/HEARTEX_/BASE_DATA_DIR, else the XDG default; must look like Label Studio's."""
    path = Path(given).expanduser() if given else default_base_data_dir(environ)
    how = "--data-dir" if given else "the default place (set --data-dir or LABEL_STUDIO_BASE_DATA_DIR)"
    if not path.exists():
        raise NotADataDir(f"data dir {path} does not exist ({how})")
    if not path.is_dir():
        raise NotADataDir(f"data dir {path} is not a directory ({how})")
    if path.name == MEDIA_DIR and is_data_dir(path.parent):
        raise NotADataDir(f"{path} is the media folder; pass its parent {path.parent} as the data dir")
    media = path / MEDIA_DIR
    if media.is_symlink() and not media.is_dir():
        raise NotADataDir(f"{media} is a symlink to {os.readlink(media)}, which is not a directory here "
                          "(is that disk mounted?)")
    if not is_data_dir(path):
        raise NotADataDir(
            f"{path} is not a Label Studio data dir (no {MEDIA_DIR}/ or {DATABASE_NAME} in it); "
            "pass the folder Label Studio runs with (LABEL_STUDIO_BASE_DATA_DIR), "
            "or use `lsmigrate copy` for a plain folder"
        )
    return DataDir(base=path)


def category(rel: str) -> str:
    """Where a media-relative path belongs in a report: `uploads/<project>`, `avatars`, `exports`, `other`."""
    head, _, rest = rel.partition("/")
    if head == "upload":
        project, sep, _ = rest.partition("/")
        return f"uploads/{project}" if sep else "uploads/(flat legacy names)"
    if head == "avatars":
        return "avatars"
    if head == "export":
        return "exports"
    return "other"


SECRET_VARIABLES = frozenset(
    {"STORAGE_AWS_SECRET_ACCESS_KEY", "STORAGE_AZURE_ACCOUNT_KEY", "AWS_SECRET_ACCESS_KEY",
     "AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AWS_SESSION_TOKEN"}
)
