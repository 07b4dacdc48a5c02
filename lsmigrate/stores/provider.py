"""What lsmigrate knows of one cloud, as one record: each `stores/<provider>/` exports one `Provider`.

endpoints, cutover, doctor, jobs and the CLI look providers up here instead of asking `provider == ...`;
a new provider is a new folder with its record, and one line in `stores/__init__.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Store
    from .destination import Destination

Env = Callable[[str], "str | None"]  # Label Studio's lookup of one setting (LABEL_STUDIO_ forms win)


@dataclass(frozen=True)
class PartLimits:
    """Sizes the provider takes for chunked uploads. `min_part` is the store's floor (a smaller --chunk-size
    is raised to it); `refused_below`/`max_part`/`max_whole` are what the provider itself refuses."""

    min_part: int
    max_parts: int
    granule: int = 1  # every part but the last is a multiple of this
    refused_below: int = 1
    max_part: int | None = None
    max_whole: int | None = None  # the largest object one request can store


@dataclass(frozen=True)
class Capabilities:
    server_side_copy: bool = False  # copy_from between two buckets of one endpoint (sync)
    event_loop_puts: bool = False  # put_async on the store's event loop (many small files, no thread hop)


@dataclass(frozen=True)
class HelmKeys:
    """`global.persistence.config.<provider>` of Label Studio's chart."""

    bucket: str
    secrets: Mapping[str, str]  # chart key -> the variable that carries it when it is held in a secret


@dataclass(frozen=True)
class CliWords:
    """How the CLI's help speaks of this provider (local-to-<name> and its options)."""

    endpoint_help: str  # --endpoint-url
    chunk_help: str  # --chunk-size
    threshold_help: str  # --multipart-threshold
    busy: str  # the provider's own "slow down" answers, as --retries lists them ("SlowDown, ")
    examples: tuple[str, ...]  # local-to-<name> arguments, one example each


@dataclass(frozen=True)
class Provider:
    name: str  # what STORAGE_TYPE and global.persistence.type say: s3 | gcs | azure
    display: str  # S3 | GCS | Azure
    schemes: tuple[str, ...]  # URL schemes taken; the first is the one printed
    bucket_word: str  # bucket | container
    bucket_pattern: re.Pattern[str]
    bucket_rule: str  # the pattern in words, for the refusal
    bucket_variable: str  # Label Studio's variable naming the bucket
    folder_variable: str
    credential_hint: str  # what doctor says to check when the credentials are refused
    endpoint_hint: str  # where the endpoint comes from, for doctor
    written_secrets: tuple[str, ...]  # credential variables cutover copies into the file when the operator set them
    helm: HelmKeys
    cors_rule: Mapping[str, Any]
    cors_text: Callable[[Mapping[str, Any]], str]  # the rule as Label Studio's guide prints it
    limits: PartLimits
    capabilities: Capabilities
    words: CliWords
    # Target fields (beyond bucket and folder) from Label Studio's variables / the chart's section.
    read_settings: Callable[[Env, Mapping[str, str]], dict[str, Any]]
    read_helm: Callable[[Mapping[str, Any], Callable[[str], str | None]], dict[str, Any]]
    # Label Studio's variables (beyond STORAGE_TYPE) and the chart's keys (below config.<name>) for a target.
    write_settings: Callable[[Destination], dict[str, str | None]]
    write_helm: Callable[[Destination], dict[str, object]]
    open_store: Callable[..., Store]  # (target, *, transfers, retries) -> Store
    endpoint_of: Callable[[Destination, Mapping[str, str]], str | None]  # where requests go; None: the public one
    public_endpoint: str | None = None
    offers_region: bool = False  # the CLI's --region
    cors_on_account: bool = False  # CORS is a setting of the whole account, not of the bucket
    settings_hold_endpoint: bool = True  # False: Label Studio's settings name an account, never an endpoint
    endpoint_variable: str | None = None  # the process variable the store reads when no endpoint is given
    shell_endpoint_variables: tuple[str, ...] = ()  # what the SDK would read from the shell, in its order
    host_only_endpoint: bool = False  # an endpoint may be given as host:port (STORAGE_EMULATOR_HOST)
    policy: Callable[[Destination], dict] | None = None  # least-privilege policy doctor prints

    @property
    def scheme(self) -> str:
        return self.schemes[0]

    @property
    def url_example(self) -> str:
        return f"{self.scheme}://{self.bucket_word}/folder"
