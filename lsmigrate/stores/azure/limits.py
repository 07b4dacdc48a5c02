"""Azure block blobs: at most 50,000 blocks of at most 4000 MiB each; lsmigrate's floor is 1 MiB."""

from ...units import MiB
from ..provider import PartLimits

LIMITS = PartLimits(min_part=1 * MiB, max_parts=50_000, max_part=4000 * MiB)
