"""A GCSStore for a target: gcsfs's session and credentials (gcsfs is imported only here, when opened)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import TargetError

if TYPE_CHECKING:
    from ..destination import Destination
    from .store import GCSStore


def open_store(target: Destination, *, transfers: int = 16, retries: int = 5) -> GCSStore:
    from .store import GCSStore

    return GCSStore(target, gcs_filesystem(target), retries=retries)


def gcs_filesystem(target: Destination):
    endpoint = target.endpoint_url
    if endpoint:
        # gcsfs probes the bucket type over gRPC+TLS, which an emulator never answers (60 s per call);
        # it must be switched off before gcsfs is first imported.
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
    import gcsfs

    token = target.credentials_file or ("anon" if endpoint and not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                                        else None)
    if token and token != "anon" and not os.path.isfile(token):
        if token.lstrip().startswith("{"):  # the key itself, which must never be printed
            raise TargetError("GOOGLE_APPLICATION_CREDENTIALS holds JSON, not a path: set it to the path of the "
                              "service-account JSON file")
        raise TargetError(f"GOOGLE_APPLICATION_CREDENTIALS points at {token}, which is not a readable file")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "project not set": lsmigrate never lists or creates buckets
        try:
            return gcsfs.GCSFileSystem(project=target.project, token=token, endpoint_url=endpoint,
                                       skip_instance_cache=True)
        except Exception as exc:  # google-auth's errors for an unusable credentials file
            raise TargetError(f"the GCS credentials cannot be used ({exc.__class__.__name__}); check "
                              "GOOGLE_APPLICATION_CREDENTIALS points at a service-account JSON file") from None
