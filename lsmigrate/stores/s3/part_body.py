"""A request body that reaches the socket without a copy in user space, and never waits forever on it.

botocore turns a bytes Body into a BytesIO, and aiohttp's BytesIOPayload then calls getbuffer() on it,
which un-shares the BytesIO's bytes: a full copy of every part into freshly mapped pages, followed by
256 KiB read() copies while sending. Measured on 2 x 256 MiB to rclone serve s3 (2 cores): that copy and
its page faults were about 0.3 s of 3.0 s client CPU. PartBody is not bytes, so botocore leaves it alone
(it validates it as a file-like blob, and can seek it back to 0 for a retry), and the payload below hands
aiohttp memoryview slices of the caller's buffer, which the event loop passes to send() directly.

aiohttp has no write timeout: a server that stops reading a body (seen here with `rclone serve s3`: eight
part uploads parked for 15 minutes with megabytes unread in its socket buffers) would hold the upload
forever. Each write must make progress within WRITE_STALL seconds, else the request fails as a read
timeout, which botocore retries on a fresh connection and the engine retries after that.
"""

from __future__ import annotations

import asyncio

from aiohttp import ServerTimeoutError, payload

CHUNK = 1 << 20  # bytes per write; aiohttp drains the transport between writes
FIRST = 16 << 10  # aiohttp joins the first write with the request head (a copy): keep it small
WRITE_STALL = 60.0  # seconds one write may wait for the server to take bytes (botocore's read timeout)


class PartBody:
    """Bytes-like data (bytes, bytearray, memoryview) as a request body, read without copying."""

    def __init__(self, data) -> None:
        self.view = memoryview(data).cast("B")
        self._pos = 0

    def __len__(self) -> int:
        return self.view.nbytes

    # the file-like side, for botocore (validation, content length, seek(0) before a retry)
    def read(self, n: int = -1) -> bytes:
        end = self.view.nbytes if n is None or n < 0 else min(self.view.nbytes, self._pos + n)
        chunk = bytes(self.view[self._pos:end])
        self._pos = end
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.view.nbytes}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class PartBodyPayload(payload.Payload):
    _value: PartBody

    def __init__(self, value: PartBody, *args, **kwargs) -> None:
        kwargs.setdefault("content_type", "application/octet-stream")
        super().__init__(value, *args, **kwargs)
        self._size = len(value)

    @property
    def size(self) -> int:
        return self._size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value.view).decode(encoding, errors)

    async def write(self, writer) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer, content_length: int | None) -> None:
        view = self._value.view
        end = view.nbytes if content_length is None else min(view.nbytes, content_length)
        if end <= 0:
            return
        first = min(end, FIRST)
        await _write(writer, view[:first])
        for start in range(first, end, CHUNK):
            await _write(writer, view[start:min(end, start + CHUNK)])


async def _write(writer, chunk: memoryview) -> None:
    try:
        await asyncio.wait_for(writer.write(chunk), WRITE_STALL)
    except asyncio.TimeoutError:
        raise ServerTimeoutError(f"the server took no bytes of the request body for {WRITE_STALL:.0f} s") from None


payload.PAYLOAD_REGISTRY.register(PartBodyPayload, PartBody, order=payload.Order.try_first)
