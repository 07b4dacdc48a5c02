"""The registry of destinations: one folder per provider, each with one `Provider` record (`record.py`).

The records are light (no SDK is imported until a store is opened), so looking a provider up costs
nothing at start-up. A new provider is one new folder, and its line in PROVIDERS.
"""

from __future__ import annotations

from .azure.record import PROVIDER as AZURE
from .errors import TargetError
from .gcs.record import PROVIDER as GCS
from .provider import Provider
from .s3.record import PROVIDER as S3

PROVIDERS: dict[str, Provider] = {record.name: record for record in (S3, GCS, AZURE)}
SCHEMES: dict[str, Provider] = {scheme: record for record in PROVIDERS.values() for scheme in record.schemes}


def record_for(name: str) -> Provider:
    """The record for a provider name (s3, gcs, azure)."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise TargetError(f"unknown provider {name}") from None


def by_scheme(scheme: str) -> Provider | None:
    """The provider a URL scheme names (s3, s3a, gs, gcs, az, abfs, azure), or None."""
    return SCHEMES.get(scheme.lower())
