"""How large a request may be: the run's settings, the part size of a file, and what each provider refuses."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..stores.base import Store
from ..stores.provider import PartLimits
from ..stores.registry import PROVIDERS
from ..units import GiB, MiB


@dataclass(frozen=True)
class Settings:
    transfers: int = 16
    chunk_size: int = 16 * MiB
    multipart_threshold: int = 32 * MiB
    retries: int = 5
    bwlimit: int = 0  # bytes per second, 0 for none


def part_size_for(size: int, chunk_size: int, *, min_part: int, max_parts: int, granule: int = 1) -> int:
    """The chunk size, grown (to whole MiB) so the file fits in max_parts parts, and rounded up to a
    multiple of the store's granule (GCS refuses other chunk sizes)."""
    part = max(chunk_size, min_part)
    if math.ceil(size / part) > max_parts:
        part = math.ceil(size / max_parts / MiB) * MiB
    return -(-part // granule) * granule


class SettingsError(ValueError):
    """A --chunk-size or --multipart-threshold the destination's provider cannot take (a usage error)."""


def _exact(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"


def check_sizes(store: Store, settings: Settings) -> str | None:
    """Refuses a part size or threshold the provider cannot take, naming what it takes; returns a note when the
    part size used is not the one given (raised to the store's floor, rounded up to its granule), else None.
    Files too large for max_parts parts of that size get larger parts (part_size_for); `plan` lists them."""
    record = PROVIDERS.get(store.target.provider)  # None for a test's in-memory store: only its own floor holds
    name = record.display if record else store.target.provider
    limits = record.limits if record else PartLimits(min_part=store.min_part_size, max_parts=store.max_parts)
    chunk, low, high = settings.chunk_size, limits.refused_below, limits.max_part
    if chunk < low or (high and chunk > high):
        allowed = f"from {_exact(low)} to {_exact(high)}" if low > 1 else f"at most {_exact(high)}"
        raise SettingsError(f"--chunk-size {_exact(chunk)} is outside the part sizes {name} takes: pass one {allowed}")
    whole = limits.max_whole
    if whole and settings.multipart_threshold > whole:
        raise SettingsError(f"--multipart-threshold {_exact(settings.multipart_threshold)} is above {_exact(whole)}, "
                            f"the largest object {name} takes in one request")
    granule = store.part_granule
    part = part_size_for(0, chunk, min_part=store.min_part_size, max_parts=store.max_parts, granule=granule)
    if part == chunk:
        return None
    rule = f"at least {_exact(store.min_part_size)}" + (f", in multiples of {_exact(granule)}" if granule > 1 else "")
    return f"--chunk-size {_exact(chunk)} is used as {_exact(part)}: {name} parts are sent {rule}"
