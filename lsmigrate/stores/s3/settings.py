"""S3 in Label Studio's words: its STORAGE_AWS_* variables and the chart's `config.s3` section."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import TargetError

if TYPE_CHECKING:
    from ..destination import Destination
    from ..provider import Env


def _truthy(value: str | None, default: bool = True) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def object_parameters(raw: str | None) -> dict[str, object]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TargetError(f"STORAGE_AWS_OBJECT_PARAMETERS is not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise TargetError("STORAGE_AWS_OBJECT_PARAMETERS must be a JSON object, e.g. {\"CacheControl\": \"max-age=86400\"}")
    return value


def read_settings(env: Env, settings: Mapping[str, str]) -> dict[str, Any]:
    return {"endpoint_url": env("STORAGE_AWS_ENDPOINT_URL"), "region": env("STORAGE_AWS_REGION_NAME"),
            "access_key": env("STORAGE_AWS_ACCESS_KEY_ID"), "secret_key": env("STORAGE_AWS_SECRET_ACCESS_KEY"),
            "object_parameters": object_parameters(env("STORAGE_AWS_OBJECT_PARAMETERS")),
            "use_ssl": _truthy(env("STORAGE_AWS_S3_USE_SSL")), "verify_ssl": _truthy(env("STORAGE_AWS_S3_VERIFY"))}


def read_helm(section: Mapping[str, Any], secret) -> dict[str, Any]:
    params = section.get("objectParameters") or {}
    if isinstance(params, str):
        params = object_parameters(params)
    return {"region": str(section.get("region") or "") or None,
            "endpoint_url": str(section.get("endpointUrl") or "") or None,
            "access_key": secret("accessKey"), "secret_key": secret("secretKey"), "object_parameters": dict(params)}


def write_settings(target: Destination) -> dict[str, str | None]:
    values: dict[str, str | None] = {
        "STORAGE_AWS_BUCKET_NAME": target.bucket, "STORAGE_AWS_FOLDER": target.folder,
        "STORAGE_AWS_REGION_NAME": target.region, "STORAGE_AWS_ENDPOINT_URL": target.endpoint_url,
    }
    if target.object_parameters:
        values["STORAGE_AWS_OBJECT_PARAMETERS"] = json.dumps(dict(target.object_parameters))
    return values


def write_helm(target: Destination) -> dict[str, object]:
    if not target.region:
        raise TargetError("the Helm chart requires a region for S3: pass --region")
    changes: dict[str, object] = {"bucket": target.bucket, "region": target.region, "folder": target.folder}
    if target.endpoint_url:
        changes["endpointUrl"] = target.endpoint_url
    return changes


def endpoint_of(target: Destination, env: Mapping[str, str]) -> str | None:
    # connect.py passes AWS_ENDPOINT_URL explicitly; botocore reads AWS_ENDPOINT_URL_S3 itself.
    return target.endpoint_url or env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3")


def policy(target: Destination) -> dict:
    """Least privilege for lsmigrate and Label Studio on this bucket and folder."""
    prefix = f"{target.folder}/*" if target.folder else "*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
             "Resource": f"arn:aws:s3:::{target.bucket}",
             **({"Condition": {"StringLike": {"s3:prefix": [f"{target.folder}/*", target.folder]}}}
                if target.folder else {})},
            {"Effect": "Allow",
             "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts"],
             "Resource": f"arn:aws:s3:::{target.bucket}/{prefix}"},
        ],
    }
