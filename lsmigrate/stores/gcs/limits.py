"""GCS resumable sessions: chunks of at least 8 MiB (lsmigrate's floor), each but the last a multiple of
256 KiB (GCS refuses others)."""

from ...units import MiB
from ..provider import PartLimits

GRANULE = 256 * 1024
LIMITS = PartLimits(min_part=8 * MiB, max_parts=1_000_000, granule=GRANULE)
