"""A fault-injecting HTTP/1.1 reverse proxy for tests: put it between lsmigrate and a storage emulator.

    with FaultProxy(moto.endpoint_url, flavor="s3", seed=1, fail_rate=0.1) as proxy:
        run("copy", ..., "--endpoint-url", proxy.endpoint_url)
        proxy.set(fail_rate=1.0)      # the network goes bad
        proxy.healthy()               # and comes back
        print(proxy.injected)         # Counter({'503': 4, 'reset_request': 3, ...})

At `fail_rate`, a request gets a fault; which one is drawn from `kinds` (with weights, if given), or, without
weights, from a shuffled bag holding each kind once, so that any run of len(kinds) faults has one of each:

- ``500``, ``503``: answered by the proxy itself, with the provider's error body (S3 `InternalError` /
  `SlowDown` XML, a GCS JSON error, Azure `InternalError` / `ServerBusy` XML); the backend never sees it.
- ``reset_request``: part of the request body is read, then the connection is reset (RST); the backend
  never sees the request.
- ``reset_response``: the backend handles the request (the object may exist now!), the client gets the
  status line, headers and part of the body, then a reset.
- ``truncate``: as ``reset_response``, but fewer bytes than Content-Length are sent and the connection is
  closed cleanly (FIN). For an empty body the Content-Length is inflated, so the client still waits for bytes.
- ``stall``: the backend handles the request, the answer is held back `stall_seconds`, then sent whole.
- ``stop_reading`` (only when asked for by name): the request head is read, then nothing more of the body
  for `stall_seconds` (the client's socket buffers fill and its writes block), then a reset.

Everything else is forwarded as it is, except: request bodies are read whole (Content-Length or chunked)
and forwarded with a Content-Length; `Expect: 100-continue` is answered by the proxy; response bodies are
re-framed with a Content-Length; `Location` headers pointing at the backend are rewritten to the proxy (so
GCS resumable-session URIs keep going through it). Keep-alive works on both sides.

The proxy runs its own asyncio loop in a daemon thread, listens on 127.0.0.1 only, and refuses any backend
that is not on 127.0.0.1. Decisions come from one seeded `random.Random`, so a run injects the same sequence
of faults (the order in which concurrent requests draw from it may still vary). No pytest import here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

__all__ = ["FAULT_KINDS", "FaultProxy"]

HOST = "127.0.0.1"
FAULT_KINDS = ("500", "503", "reset_request", "reset_response", "truncate", "stall")
NAMED_ONLY_KINDS = ("stop_reading",)  # never drawn unless named in `kinds`
_NO_BODY_STATUS = {204, 304}
_MAX_HEAD = 1 << 20

_ERRORS = {
    "s3": {
        500: ("application/xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>"
                                 "<Message>We encountered an internal error. Please try again.</Message>"
                                 "<RequestId>FAULTPROXY</RequestId></Error>"),
        503: ("application/xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                                 "<Message>Please reduce your request rate.</Message>"
                                 "<RequestId>FAULTPROXY</RequestId></Error>"),
    },
    "gcs": {
        500: ("application/json", json.dumps({"error": {"code": 500, "message": "Internal Error", "errors": [
            {"message": "Internal Error", "domain": "global", "reason": "backendError"}]}})),
        503: ("application/json", json.dumps({"error": {"code": 503, "message": "Backend Error", "errors": [
            {"message": "Backend Error", "domain": "global", "reason": "backendError"}]}})),
    },
    "azure": {
        500: ("application/xml", "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>InternalError</Code>"
                                 "<Message>The server encountered an internal error. Please retry the request."
                                 "</Message></Error>"),
        503: ("application/xml", "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code>"
                                 "<Message>The server is currently unable to receive requests. Please retry your "
                                 "request.</Message></Error>"),
    },
}
_AZURE_CODES = {500: "InternalError", 503: "ServerBusy"}
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class _Closed(Exception):
    """The client went away (or sent something that is not HTTP): drop the connection."""


class _Message:
    """A request or response head: first line and headers, in order and as sent."""

    def __init__(self, first: str, headers: list[tuple[str, str]]) -> None:
        self.first = first
        self.headers = headers

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def without(self, *names: str) -> list[tuple[str, str]]:
        drop = {n.lower() for n in names}
        return [(k, v) for k, v in self.headers if k.lower() not in drop]

    def wants_close(self) -> bool:
        return "close" in (self.get("Connection") or "").lower()


def _encode_head(first: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [first, *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> _Message | None:
    """The next message head, or None on a clean EOF between messages."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise _Closed("connection closed inside a message head") from None
    except asyncio.LimitOverrunError:
        raise _Closed("message head too large") from None
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _Closed(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return _Message(lines[0], headers)


async def _read_chunked(reader: asyncio.StreamReader, limit: int | None = None) -> bytes:
    """A chunked body, de-chunked (trailers dropped). With `limit`, stop once that many bytes are read."""
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return bytes(body)
        if limit is not None and len(body) + size >= limit:
            body += await reader.readexactly(max(0, limit - len(body)))
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _read_body(reader: asyncio.StreamReader, head: _Message, *, limit: int | None = None) -> bytes:
    if "chunked" in (head.get("Transfer-Encoding") or "").lower():
        return await _read_chunked(reader, limit)
    length = int(head.get("Content-Length") or 0)
    if limit is not None:
        length = min(length, limit)
    return await reader.readexactly(length) if length else b""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN: the peer sees ECONNRESET."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """See the module docstring. Thread-safe controls: `set()`, `healthy()`, `injected`, `requests`."""

    def __init__(self, backend_url: str, *, flavor: str = "s3", seed: int = 0, fail_rate: float = 0.0,
                 kinds: Iterable[str] | Mapping[str, float] | None = None, stall_seconds: float = 2.0,
                 methods: Iterable[str] | None = None, match: Callable[[str, str], bool] | None = None,
                 max_faults: int | None = None) -> None:
        parts = urlsplit(backend_url)
        if parts.scheme != "http" or parts.hostname != HOST or not parts.port:
            raise ValueError(f"the backend must be http://{HOST}:PORT, not {backend_url!r}")
        if flavor not in _ERRORS:
            raise ValueError(f"flavor must be one of {sorted(_ERRORS)}")
        self.backend_url = f"http://{HOST}:{parts.port}"
        self._backend_port = parts.port
        self.flavor = flavor
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._fail_rate = 0.0
        self._kinds: list[tuple[str, float]] = [(k, 1.0) for k in FAULT_KINDS]
        self._weighted = False
        self._stall = 2.0
        self._methods: frozenset[str] | None = None
        self._match: Callable[[str, str], bool] | None = None
        self._faults_left: int | None = None
        self._pass_next = 0
        self._pass_until: tuple[Callable[[str, str], bool], int] | None = None
        self._bag: list[str] = []
        self._counts: Counter[str] = Counter()
        self._requests = 0
        self._log: deque[tuple[str, str, str]] = deque(maxlen=100_000)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.set(fail_rate=fail_rate, kinds=kinds, stall_seconds=stall_seconds, methods=methods, match=match,
                 max_faults=max_faults)

    # -- controls (any thread) ---------------------------------------------------------------------
    def set(self, *, fail_rate: float | None = None, kinds: Iterable[str] | Mapping[str, float] | None = None,
            stall_seconds: float | None = None, methods: Iterable[str] | None = None,
            pass_next: int | None = None, pass_until: Callable[[str, str], bool] | None = None,
            pass_until_count: int = 1, match: Callable[[str, str], bool] | None = None,
            max_faults: int | None = None) -> FaultProxy:
        """Change the fault settings at run time. `kinds`: names from FAULT_KINDS, or name -> weight.
        `methods`: only requests with these methods get faults (None: all). `pass_next`: the next N
        requests pass untouched whatever the rate (the network fails N requests from now).
        `pass_until`: requests pass untouched until `pass_until_count` requests for which
        `pass_until(method, target)` is true have passed (the network fails after, say, the second part
        of a large file). `match(method, target)`: only requests it is true for get faults.
        `max_faults`: after that many faults, the network is healthy again."""
        with self._lock:
            if fail_rate is not None:
                if not 0.0 <= fail_rate <= 1.0:
                    raise ValueError("fail_rate is a probability, 0.0 to 1.0")
                self._fail_rate = fail_rate
            if kinds is not None:
                self._weighted = isinstance(kinds, Mapping)
                weighted = dict(kinds) if isinstance(kinds, Mapping) else {k: 1.0 for k in kinds}
                unknown = set(weighted) - set(FAULT_KINDS) - set(NAMED_ONLY_KINDS)
                if unknown or not any(w > 0 for w in weighted.values()):
                    raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {FAULT_KINDS}")
                self._kinds = [(k, float(w)) for k, w in weighted.items() if w > 0]
                self._bag = []
            if stall_seconds is not None:
                self._stall = float(stall_seconds)
            if methods is not None:
                self._methods = frozenset(m.upper() for m in methods) or None
            if match is not None:
                self._match = match
            if max_faults is not None:
                self._faults_left = int(max_faults)
            if pass_next is not None:
                self._pass_next = int(pass_next)
            if pass_until is not None:
                self._pass_until = (pass_until, int(pass_until_count))
        return self

    def healthy(self) -> FaultProxy:
        """No more faults (counters are kept)."""
        with self._lock:
            self._fail_rate = 0.0
            self._pass_next = 0
            self._pass_until = None
            self._methods = None
            self._match = None
            self._faults_left = None
        return self

    @property
    def injected(self) -> Counter[str]:
        """Faults injected so far, by kind."""
        with self._lock:
            return Counter({k: v for k, v in self._counts.items() if k in FAULT_KINDS + NAMED_ONLY_KINDS})

    @property
    def forwarded(self) -> int:
        """Requests passed to the backend and answered whole."""
        with self._lock:
            return self._counts["forwarded"]

    @property
    def log(self) -> list[tuple[str, str, str]]:
        """(method, request target, fault or "") of every request seen, in order of arrival (the last 100,000)."""
        with self._lock:
            return list(self._log)

    @property
    def connections(self) -> int:
        """Client connections accepted (keep-alive shows as fewer connections than requests)."""
        with self._lock:
            return self._counts["connections"]

    @property
    def requests(self) -> int:
        """Requests seen (each retry counts again)."""
        with self._lock:
            return self._requests

    @property
    def endpoint_url(self) -> str:
        if not self.port:
            raise RuntimeError("the proxy is not started")
        return f"http://{HOST}:{self.port}"

    def _decide(self, method: str, target: str) -> str | None:
        with self._lock:
            kind = self._draw(method, target)
            self._requests += 1
            if kind is not None:
                self._counts[kind] += 1
            self._log.append((method, target, kind or ""))
            return kind

    def _draw(self, method: str, target: str) -> str | None:
        if self._pass_next > 0:
            self._pass_next -= 1
            return None
        if self._pass_until is not None:
            predicate, left = self._pass_until
            if predicate(method, target):
                left -= 1
            self._pass_until = (predicate, left) if left > 0 else None
            return None
        if self._methods is not None and method.upper() not in self._methods:
            return None
        if self._match is not None and not self._match(method, target):
            return None
        if self._fail_rate <= 0 or self._rng.random() >= self._fail_rate:
            return None
        if self._faults_left is not None:
            self._faults_left -= 1
            if self._faults_left <= 0:
                self._fail_rate = 0.0
        if self._weighted:
            return self._rng.choices([k for k, _ in self._kinds], weights=[w for _, w in self._kinds])[0]
        if not self._bag:
            self._bag = [k for k, _ in self._kinds]
            self._rng.shuffle(self._bag)
        return self._bag.pop()

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._client, HOST, 0, limit=_MAX_HEAD, reuse_address=True))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # noqa: BLE001 - handed to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        if not self.port:
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, stop the loop, join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.endpoint_url if self.port else "stopped"
        return f"<FaultProxy {where} -> {self.backend_url} fail_rate={self._fail_rate}>"

    # -- one client connection ---------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._count("connections")
        self._tasks.add(task)
        self._writers.add(writer)
        backend: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = [None]
        graceful = False
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    break
                if not await self._exchange(head, reader, writer, backend):
                    break
            graceful = True
        except (_Closed, asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            if backend[0] is not None:
                backend[0][1].transport.abort()
            if not writer.transport.is_closing():
                if graceful:  # the last answer may still sit in the write buffer: flush it, then FIN
                    writer.close()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(writer.wait_closed(), 10)
                else:
                    writer.transport.abort()

    async def _exchange(self, head: _Message, reader, writer, backend) -> bool:
        """One request and its answer; False when the client connection must end."""
        parts = head.first.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _Closed(f"not an HTTP/1.x request line: {head.first!r}")
        method, version = parts[0], parts[2]
        keep_alive = version == "HTTP/1.1" and not head.wants_close()
        expects = "100-continue" in (head.get("Expect") or "").lower()
        fault = self._decide(method, parts[1])

        if fault in ("500", "503"):
            status = int(fault)
            if expects:  # answer before the body, as a server does, and end the connection: it may follow
                await self._send_error(writer, status, method, close=True)
                return False
            await _read_body(reader, head)
            await self._send_error(writer, status, method, close=not keep_alive)
            return keep_alive

        if expects:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()

        if fault == "stop_reading":
            await asyncio.sleep(self._stall)
            _reset(writer)
            return False

        if fault == "reset_request":
            declared = int(head.get("Content-Length") or 0)
            with contextlib.suppress(asyncio.IncompleteReadError, ValueError):
                await _read_body(reader, head, limit=max(1, declared // 2) if declared else 1)
            _reset(writer)
            return False

        body = await _read_body(reader, head)
        try:
            answer, answer_body, backend_closes = await self._forward(head, body, backend)
        except (OSError, asyncio.IncompleteReadError, _Closed, ValueError):
            self._count("backend_error")
            await self._send_error(writer, 502, method, close=True)
            return False

        status_line = answer.first
        status = int(status_line.split(" ")[1])
        headers = [(k, self._rewrite(k, v)) for k, v in answer.without("Transfer-Encoding", "Content-Length")]
        no_body = method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200
        if no_body:
            length_header = answer.get("Content-Length")
            if length_header is not None:
                headers.append(("Content-Length", length_header))
        else:
            headers.append(("Content-Length", str(len(answer_body))))
        client_closes = not keep_alive or answer.wants_close()

        if fault == "stall":
            await asyncio.sleep(self._stall)
        if fault in ("reset_response", "truncate"):
            raw_head = _encode_head(status_line, headers)
            if no_body:  # nothing to cut but the head itself
                writer.write(raw_head[: len(raw_head) // 2])
            elif not answer_body:  # promise bytes that never come
                writer.write(_encode_head(status_line, [*headers[:-1], ("Content-Length", "16")]))
            else:
                writer.write(raw_head + answer_body[: len(answer_body) // 2])
            writer.transport.set_write_buffer_limits(0)
            await writer.drain()
            if fault == "reset_response":
                await asyncio.sleep(0.05)  # let the partial answer reach the client before the RST
                _reset(writer)
            else:
                writer.close()
            return False

        writer.write(_encode_head(status_line, headers) + (b"" if no_body else answer_body))
        await writer.drain()
        self._count("forwarded")
        if backend_closes and backend[0] is not None:
            backend[0][1].transport.abort()
            backend[0] = None
        return not client_closes

    async def _forward(self, head: _Message, body: bytes, backend) -> tuple[_Message, bytes, bool]:
        """Send the request to the backend (re-using its connection) and read the whole answer."""
        method = head.first.split(" ", 1)[0]
        headers = head.without("Transfer-Encoding", "Content-Length", "Expect")
        had_length = head.get("Content-Length") is not None or head.get("Transfer-Encoding") is not None
        if body or had_length:
            headers.append(("Content-Length", str(len(body))))
        raw = _encode_head(head.first, headers) + body
        for attempt in (1, 2):
            fresh = backend[0] is None
            if fresh:
                backend[0] = await asyncio.open_connection(HOST, self._backend_port, limit=_MAX_HEAD)
            b_reader, b_writer = backend[0]
            try:
                b_writer.write(raw)
                await b_writer.drain()
                answer = await _read_head(b_reader)
                while answer is not None and answer.first.split(" ")[1].startswith("1") and \
                        answer.first.split(" ")[1] != "101":
                    answer = await _read_head(b_reader)  # interim answers: skip
                if answer is None:
                    raise ConnectionResetError("the backend closed the connection")
            except (ConnectionError, _Closed):
                b_writer.transport.abort()
                backend[0] = None
                if fresh or attempt == 2:
                    raise
                continue  # a kept-alive backend connection went stale: one fresh try
            status = int(answer.first.split(" ")[1])
            closes = answer.wants_close()
            if method == "HEAD" or status in _NO_BODY_STATUS:
                answer_body = b""
            elif "chunked" in (answer.get("Transfer-Encoding") or "").lower():
                answer_body = await _read_chunked(b_reader)
            elif answer.get("Content-Length") is not None:
                answer_body = await b_reader.readexactly(int(answer.get("Content-Length") or 0))
            else:
                answer_body = await b_reader.read()  # until the backend closes
                closes = True
            return answer, answer_body, closes
        raise AssertionError("unreachable")

    def _rewrite(self, name: str, value: str) -> str:
        if name.lower() == "location" and value.startswith(self.backend_url):
            return self.endpoint_url + value[len(self.backend_url):]
        return value

    async def _send_error(self, writer: asyncio.StreamWriter, status: int, method: str, *, close: bool) -> None:
        kind, text = _ERRORS[self.flavor].get(status, ("text/plain", _REASONS.get(status, "error")))
        payload = text.encode()
        headers = [("Content-Type", kind), ("Content-Length", str(len(payload)))]
        if self.flavor == "azure" and status in _AZURE_CODES:
            headers.append(("x-ms-error-code", _AZURE_CODES[status]))
        if self.flavor == "s3" and status == 503:
            headers.append(("Retry-After", "0"))
        if close:
            headers.append(("Connection", "close"))
        writer.write(_encode_head(f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", headers)
                     + (b"" if method == "HEAD" else payload))
        await writer.drain()
        if close:
            writer.close()
