"""What the stores read of a destination. `lsmigrate.target.Target` has this shape, and so does the in-memory
store's own target. The stores name this protocol rather than Target: target.py looks its provider up in the
registry, which imports the stores' records, so an import of Target here would close a circle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Destination(Protocol):
    provider: str
    bucket: str
    folder: str
    endpoint_url: str | None
    region: str | None
    access_key: str | None
    secret_key: str | None
    object_parameters: Mapping[str, object]
    project: str | None
    account_name: str | None
    account_key: str | None
    connection_string: str | None
    credentials_file: str | None
    use_ssl: bool
    verify_ssl: bool | str

    @property
    def url(self) -> str: ...

    def key(self, rel: str) -> str: ...
