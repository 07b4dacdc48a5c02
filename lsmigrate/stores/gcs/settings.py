"""GCS in Label Studio's words: its STORAGE_GCS_* variables and the chart's `config.gcs` section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import TargetError

if TYPE_CHECKING:
    from ..destination import Destination
    from ..provider import Env


def read_settings(env: Env, settings: Mapping[str, str]) -> dict[str, Any]:
    return {"endpoint_url": env("STORAGE_GCS_ENDPOINT") or settings.get("STORAGE_EMULATOR_HOST") or None,
            "project": env("STORAGE_GCS_PROJECT_ID"),
            "credentials_file": settings.get("GOOGLE_APPLICATION_CREDENTIALS") or None}


def read_helm(section: Mapping[str, Any], secret) -> dict[str, Any]:
    secret("applicationCredentialsJSON")  # only for its note: the key file is the pod's, never ours
    return {"project": str(section.get("projectID") or "") or None}


def write_settings(target: Destination) -> dict[str, str | None]:
    return {"STORAGE_GCS_BUCKET_NAME": target.bucket, "STORAGE_GCS_FOLDER": target.folder,
            "STORAGE_GCS_PROJECT_ID": target.project, "STORAGE_GCS_ENDPOINT": target.endpoint_url}


def write_helm(target: Destination) -> dict[str, object]:
    if not target.project:
        raise TargetError("the Helm chart requires a project for GCS: set STORAGE_GCS_PROJECT_ID")
    return {"bucket": target.bucket, "projectID": target.project, "folder": target.folder}


def endpoint_of(target: Destination, env: Mapping[str, str]) -> str | None:
    url = target.endpoint_url or env.get("STORAGE_EMULATOR_HOST")
    if url == "default":  # gcsfs: the public endpoint
        url = None
    if url and "://" not in url:
        url = f"http://{url}"
    return url
