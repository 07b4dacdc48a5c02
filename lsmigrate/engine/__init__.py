"""The engine runs a plan: scheduling (threads, the event loop, batches of small files), sending (whole, in
parts, resumed, copied server-side), limits (rate, byte budget, buffers), sizes (what a provider takes) and
results (what a run adds up to)."""

from .limits import BufferPool, ByteBudget, RateLimit
from .results import Stats, settled_without_transfer
from .scheduling import Engine, abort_orphans
from .sizes import Settings, SettingsError, check_sizes, part_size_for

__all__ = [
    "BufferPool", "ByteBudget", "Engine", "RateLimit", "Settings", "SettingsError", "Stats",
    "abort_orphans", "check_sizes", "part_size_for", "settled_without_transfer",
]
