"""The destinations lsmigrate writes to: one folder per provider, each exporting one `Provider` record.

The records are light (no SDK is imported until a store is opened), so looking a provider up costs
nothing at start-up. A new provider is one new folder, and its line in PROVIDERS.
"""

from __future__ import annotations

from . import azure, gcs, s3
from .errors import TargetError
from .provider import Provider

PROVIDERS: dict[str, Provider] = {record.name: record for record in (s3.PROVIDER, gcs.PROVIDER, azure.PROVIDER)}
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
