"""A destination: a bucket (container) and folder at one provider, with what is needed to reach it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .stores.errors import TargetError
from .stores.registry import record_for

__all__ = ["Target", "TargetError"]


@dataclass(frozen=True)
class Target:
    """A bucket (container) and folder at one provider, with what is needed to reach it."""

    provider: str  # a name in lsmigrate.stores.PROVIDERS: s3 | gcs | azure
    bucket: str
    folder: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    # Credentials and provider options are kept out of repr() so they never reach a message or a log.
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    object_parameters: Mapping[str, object] = field(default_factory=dict, repr=False)
    project: str | None = None
    account_name: str | None = None
    account_key: str | None = field(default=None, repr=False)
    connection_string: str | None = field(default=None, repr=False)
    credentials_file: str | None = None  # GCS service-account JSON (a path, not a secret itself)
    use_ssl: bool = True
    verify_ssl: bool | str = True
    notes: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        path = f"{self.bucket}/{self.folder}" if self.folder else self.bucket
        return f"{record_for(self.provider).scheme}://{path}"

    def key(self, rel: str) -> str:
        return f"{self.folder}/{rel}" if self.folder else rel
