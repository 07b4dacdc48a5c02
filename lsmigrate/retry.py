"""One retry policy for every request to every store, built from `--retries`.

A request is tried at most `attempts` times (`--retries` + 1). Between tries it waits an exponential
backoff with equal jitter, 1, 2, 4 ... seconds (each drawn from [ceiling/2, ceiling], the ceiling capped at
20 s: botocore's standard-mode ceilings, so S3 requests that botocore retries keep the same bound), or
longer if the server's Retry-After asks for it (up to MAX_RETRY_AFTER). Only what can succeed on a second
try is retried: 408, 429, 5xx (not 501/505), throttling codes (S3 SlowDown, Azure ServerBusy), timeouts and
dropped connections; never a refused credential, a missing permission or object, or a checksum mismatch.

The stores apply it at the request layer; the engine never retries a request failure on top of that.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")

# Seconds to open a connection (s3fs's long-standing default for S3): the part of a dead endpoint's bound
# that no backoff covers. The libraries' own (the OS's minutes for gcsfs, 20 s for Azure) made it minutes.
CONNECT_TIMEOUT = 5.0
MAX_RETRY_AFTER = 30.0  # a server's Retry-After is honoured up to this many seconds
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Error codes that mean "try again later" whatever the status they came with (S3 answers RequestTimeout as 400).
RETRY_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestTimeout",
                         "RequestTimeoutException", "InternalError", "ServiceUnavailable", "ServerBusy",
                         "OperationTimedOut", "TooManyRequests", "rateLimitExceeded", "backendError"})

# The subset that means "slow down": a request still failing with one of these after every retry is Throttled.
THROTTLE_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "ServerBusy",
                            "TooManyRequests", "rateLimitExceeded"})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    attempts: int = 6  # tries of one request, the first included
    base: float = 1.0  # ceiling of the first wait, doubled for each further one
    cap: float = 20.0  # no backoff ceiling above this
    max_retry_after: float = MAX_RETRY_AFTER
    connect_timeout: float = CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a request is tried at least once")

    @classmethod
    def from_retries(cls, retries: int) -> RetryPolicy:
        """The policy for `--retries N`: N + 1 tries of each request."""
        return cls(attempts=max(0, retries) + 1)

    @property
    def retries(self) -> int:
        return self.attempts - 1

    def ceiling(self, retry: int) -> float:
        """The longest backoff before retry number `retry` (1 for the first retry)."""
        return min(self.cap, self.base * 2 ** (max(1, retry) - 1))

    def delay(self, retry: int, retry_after: float | None = None, *, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry`: equal jitter under the ceiling, or the server's
        Retry-After if that is longer (capped at max_retry_after)."""
        ceiling = self.ceiling(retry)
        wait = ceiling / 2 + rand() * ceiling / 2
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait

    def bound(self) -> float:
        """The longest one request can take to fail against an endpoint that never answers the connection
        (a black hole): every attempt's connect timeout plus every backoff at its ceiling."""
        return self.attempts * self.connect_timeout + sum(self.ceiling(n) for n in range(1, self.attempts))

    async def run(self, call: Callable[[], Awaitable[T]], *,
                  retryable: Callable[[BaseException], bool] | None = None) -> T:
        """`await call()`, tried again as the policy allows."""
        check = retryable or is_retryable
        retry = 0
        while True:
            try:
                return await call()
            except Exception as exc:
                if retry + 1 >= self.attempts or not check(exc):
                    raise
                retry += 1
                wait = self.delay(retry, retry_after_of(exc))
            await asyncio.sleep(wait)


def retryable_status(status: int | None, code: str | None = None) -> bool:
    """Whether an HTTP answer with this status (and provider error code) may succeed if sent again."""
    if code and code in RETRY_CODES:
        return True
    if status is None:
        return False
    return status in RETRY_STATUS or (status >= 500 and status not in (501, 505))


def throttled(status: int | None, code: str | None = None) -> bool:
    """Whether an answer asked the client to slow down (429, or a provider's throttling code)."""
    return status == 429 or bool(code and code in THROTTLE_CODES)


def is_retryable(exc: BaseException) -> bool:
    """Whether a request that failed with `exc` may succeed if sent again."""
    status, code = _status_and_code(exc)
    if status is not None or code:
        return retryable_status(status, code)
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp comes with every store
        return False
    # A connection that failed, dropped or timed out, and an answer cut short.
    return isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for: a number of seconds, or an HTTP date (RFC 9110)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_after_of(exc: BaseException) -> float | None:
    """The Retry-After an error's answer carried (botocore, aiohttp and Azure errors keep the headers)."""
    return retry_after_in(_headers_of(exc))


def retry_after_in(headers) -> float | None:
    """The Retry-After of an answer's headers (any mapping, any case), in seconds."""
    if not headers or not hasattr(headers, "items"):
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    if "x-ms-retry-after-ms" in lowered or "retry-after-ms" in lowered:
        value = parse_retry_after(lowered.get("x-ms-retry-after-ms") or lowered.get("retry-after-ms"))
        return value / 1000 if value is not None else None
    return parse_retry_after(lowered.get("retry-after"))


def _headers_of(exc: BaseException):
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        return response.get("ResponseMetadata", {}).get("HTTPHeaders")
    headers = getattr(response, "headers", None) if response is not None else None  # Azure's HttpResponseError
    return headers if headers is not None else getattr(exc, "headers", None)  # aiohttp's ClientResponseError


def _status_and_code(exc: BaseException) -> tuple[int | None, str | None]:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = response.get("Error", {}).get("Code")
        return (int(status) if status else None), (str(code) if code else None)
    for name in ("status_code", "status", "code"):  # Azure, aiohttp, gcsfs
        value = getattr(exc, name, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value, getattr(exc, "error_code", None)
    return None, getattr(exc, "error_code", None)
