"""What S3 itself refuses: parts (all but the last) under 5 MiB or over 5 GiB, more than 10,000 of them,
and objects over 5 GiB in one PutObject."""

from ...units import GiB, MiB
from ..provider import PartLimits

LIMITS = PartLimits(min_part=5 * MiB, max_parts=10_000, refused_below=5 * MiB, max_part=5 * GiB, max_whole=5 * GiB)
