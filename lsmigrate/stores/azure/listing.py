"""Azure listings as the planner needs them: RemoteObjects, in code point order."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from ...scan import RemoteObject
from ..errors import StoreError

CLIENT_MD5_MARK = "lsmigrate_client_md5"  # metadata on blobs whose Content-MD5 lsmigrate set at commit


def _safe_bound(name: str) -> str:
    """No later name in a UTF-16 (or code point) ordered listing sorts before this prefix in code point order."""
    for index, char in enumerate(name):
        if ord(char) > 0xFFFF:
            return name[:index]
    return name


def in_code_point_order(items: Iterable[RemoteObject]) -> Iterator[RemoteObject]:
    """Re-order a listing into Python's str (code point) order, streaming.

    Azurite lists in UTF-16 code unit order (JavaScript string comparison), where a name with a character
    above U+FFFF (an emoji) sorts before one with U+E000..U+FFFF at the same place; code point order (and
    UTF-8 byte order, what the planner merges by) puts it after. Only names sharing a prefix up to such a
    character are held back, so memory stays flat for ordinary trees. A listing in code point order passes
    through unchanged. Anything else is refused rather than merged wrongly.
    """
    heap: list[tuple[str, int, RemoteObject]] = []
    last: str | None = None
    seq = 0

    def emit(entry: tuple[str, int, RemoteObject]) -> RemoteObject:
        nonlocal last
        rel = entry[0]
        if last is not None and rel <= last:
            raise StoreError(f"the Azure listing came in an order lsmigrate does not understand ({rel!r} after "
                             f"{last!r}); please report this")
        last = rel
        return entry[2]

    for item in items:
        seq += 1
        heapq.heappush(heap, (item.rel, seq, item))
        bound = _safe_bound(item.rel)
        while heap and heap[0][0] <= bound:
            yield emit(heapq.heappop(heap))
    while heap:
        yield emit(heapq.heappop(heap))


def remote_object(rel: str, size: int, etag: str | None, md5: bytes | bytearray | None, modified,
            metadata=None) -> RemoteObject:
    """The journal keeps the content MD5 as an object's token (what uploads answer), so listings carry the
    same; Azure's own ETag stands in only for blobs without a Content-MD5. A Content-MD5 that lsmigrate set
    at a block-list commit (marked in the metadata) is the uploader's value, not the service's."""
    md5_hex = bytes(md5).hex() if md5 and len(md5) == 16 else None
    ours = str((metadata or {}).get(CLIENT_MD5_MARK, "")).lower() == "true"
    return RemoteObject(rel, int(size), md5_hex or (etag or "").strip('"') or None, None if ours else md5_hex,
                        modified.timestamp() if modified else None, client_md5=md5_hex if ours else None)
