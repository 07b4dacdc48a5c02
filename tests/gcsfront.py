"""A front for fake-gcs-server that keeps resumable sessions to the rules real GCS enforces and the emulator
does not (TESTBED.md, "Real-cloud rules"):

- every chunk but the last of an object is a multiple of 256 KiB, and
- a chunk starts where the bytes the session has persisted end;

anything else gets a 400 with a GCS JSON error and never reaches the emulator. The front also answers GCS's
status query (`Content-Range: bytes */SIZE`, no body) itself, with the persisted range, as GCS documents:
fake-gcs-server would finalize the object on it instead.

    with GCSFront(fake_gcs.endpoint_url) as front:
        run("copy", ..., "--endpoint-url", front.endpoint_url)
        front.chunks        # every chunk PUT: Chunk(session, start, end, total, status)

Modes, changeable at run time:
- ``short=True``: every other chunk that is not an object's last persists only a 256 KiB-aligned prefix (about
  half) and is answered 308 with that shorter Range, as GCS may do.
- ``stuck_at=N``: nothing at or beyond byte N is persisted; chunks are answered 308 with the range held so far.

It is a FaultProxy (same plumbing: keep-alive, Location rewritten to the front, loopback only) that never
injects faults; only session PUTs are looked at, everything else is forwarded as it is.
"""

from __future__ import annotations

import json
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from faultproxy import FaultProxy, _Message

__all__ = ["GRANULE", "Chunk", "GCSFront"]

GRANULE = 256 * 1024


class Chunk(NamedTuple):
    session: str
    start: int
    end: int  # exclusive
    total: int | None  # None for `*`
    status: int  # what the client was answered

    @property
    def final(self) -> bool:
        return self.total is not None and self.end == self.total


def _error(message: str) -> tuple[_Message, bytes, bool]:
    body = json.dumps({"error": {"code": 400, "message": message, "errors": [
        {"message": message, "domain": "global", "reason": "invalid"}]}}).encode()
    return _Message("HTTP/1.1 400 Bad Request", [("Content-Type", "application/json; charset=UTF-8")]), body, False


def _resume_incomplete(persisted: int) -> tuple[_Message, bytes, bool]:
    headers = [("Range", f"bytes=0-{persisted - 1}")] if persisted else []
    return _Message("HTTP/1.1 308 Resume Incomplete", headers), b"", False


class GCSFront(FaultProxy):
    def __init__(self, backend_url: str, *, short: bool = False, stuck_at: int | None = None) -> None:
        super().__init__(backend_url, flavor="gcs")
        self.short = short
        self.stuck_at = stuck_at
        self._chunks: list[Chunk] = []
        self._queries: list[tuple[str, int]] = []
        self._persisted: dict[str, int] = {}
        self._finished: dict[str, tuple[_Message, bytes, bool]] = {}
        self._short_turn = True

    @property
    def chunks(self) -> list[Chunk]:
        with self._lock:
            return list(self._chunks)

    @property
    def queries(self) -> list[tuple[str, int]]:
        """Status queries: (session, bytes persisted that were reported)."""
        with self._lock:
            return list(self._queries)

    async def _forward(self, head: _Message, body: bytes, backend):
        method, target = head.first.split(" ")[:2]
        session = parse_qs(urlsplit(target).query).get("upload_id", [None])[0]
        content_range = head.get("Content-Range")
        if method != "PUT" or session is None or content_range is None:
            return await super()._forward(head, body, backend)
        span, _, total_text = content_range.removeprefix("bytes ").partition("/")
        total = None if total_text == "*" else int(total_text)
        persisted = self._persisted.get(session, 0)
        if span == "*":
            with self._lock:
                self._queries.append((session, persisted))
            return self._finished.get(session) or _resume_incomplete(persisted)
        first, _, last = span.partition("-")
        start, end = int(first), int(last) + 1

        answer = self._check(session, start, end, total, body, persisted)
        if answer is None:
            answer = await self._persist(head, body, backend, session, start, end, total)
        with self._lock:
            self._chunks.append(Chunk(session, start, end, total, int(answer[0].first.split(" ")[1])))
        return answer

    def _check(self, session, start, end, total, body, persisted):
        if session in self._finished:
            return _error("Invalid request. The upload is already complete.")
        if len(body) != end - start:
            return _error(f"Invalid request. There were {len(body)} byte(s) in the request body. There should have "
                          f"been {end - start} byte(s) according to the Content-Range header.")
        if start != persisted:
            return _error(f"Invalid request. The chunk starts at byte {start}, but the session has persisted "
                          f"{persisted} byte(s).")
        if end != total and (end - start) % GRANULE:
            return _error(f"Invalid request. The chunk has {end - start} byte(s); every chunk but the last must be "
                          f"a multiple of {GRANULE} bytes.")
        return None

    async def _persist(self, head, body, backend, session, start, end, total):
        keep = end - start
        if self.stuck_at is not None and end > self.stuck_at:
            keep = max(0, (self.stuck_at - start) // GRANULE * GRANULE)
        elif self.short and end != total and keep > GRANULE:
            if self._short_turn:
                keep = max(GRANULE, keep // 2 // GRANULE * GRANULE)
            self._short_turn = not self._short_turn
        if keep == 0:
            return _resume_incomplete(self._persisted.get(session, 0))
        if keep < end - start:
            headers = [(k, v) for k, v in head.headers if k.lower() != "content-range"]
            headers.append(("Content-Range", f"bytes {start}-{start + keep - 1}/{'*' if total is None else total}"))
            head, body = _Message(head.first, headers), body[:keep]
        answer = await super()._forward(head, body, backend)
        status = int(answer[0].first.split(" ")[1])
        if status == 308:
            self._persisted[session] = start + keep
            return _resume_incomplete(start + keep)
        if status in (200, 201):
            self._persisted[session] = start + keep
            self._finished[session] = (answer[0], answer[1], False)  # kept for status queries
        return answer
