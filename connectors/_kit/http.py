"""HTTP for the connectors that talk to servers: one httpx client with retries, a rate limit,
timeouts and secret redaction.

    client = HttpClient("https://api.example.com/v2/", headers={"authtoken": token},
                        secrets=[token], timeout=10, retry=RetryPolicy(attempts=3),
                        rate=RateLimit(5))
    response = client.request("GET", "items", params={"since": 0})     # any status
    client.request("POST", "items", json=[...], idempotent=False)      # sent once

`request` answers the final `httpx.Response` whatever its status: the connector turns statuses
into its own errors (with `parse_retry_after` for the server's `Retry-After`). Per request:

- the rate limit is waited for first (a token bucket: `rate` requests per second on average,
  `burst` at once); every attempt takes a token;
- a request that got no answer (connection refused or reset, a timeout, a broken answer) or
  that was answered with a status in `retry.statuses` (429, 502, 503, 504) is tried again, up
  to `retry.attempts` tries in all. Before try n+1 it waits what the server's `Retry-After`
  said (seconds or an HTTP date), else a full-jitter exponential backoff: a uniform draw in
  [0, min(retry.max_backoff, retry.backoff * 2**(n-1))];
- a `Retry-After` longer than `retry.max_wait` is not waited for here: that response is answered
  at once, so the caller can schedule the retry (the hub's outbound records it and waits);
- a request that is not `idempotent` is sent once, whatever happens: whether repeating it is
  safe is the caller's decision (the hub's outbound retries writes with their idempotency key
  and records each attempt);
- no answer at all after the last try raises `NoAnswer`, a ConnectorError saying how many tries
  were made and why the last one failed.

Errors:

    ConnectorError              (hub.spi)
    └── NoAnswer                no HTTP answer after `attempts` tries: `cause` (the httpx
                                exception's name), `detail` (its text), `timed_out`

Redaction: `redact(text)` replaces every known secret (the `secrets` given, the password of a
URL with user-info, any added with `add_secret`, e.g. a session token) and the user-info of any
URL with `***`. Every message and log line this module makes goes through it; a connector
passes the text it quotes from a server (an error page, an exception) through it too.

Why this is written here instead of taken from a library (httpx's transports retry only failed
connects; `httpx-retries` and `tenacity` exist):
- `httpx-retries` decides by HTTP method (a JSON-RPC read and a JSON-RPC create are both POST),
  retries read timeouts of every method it allows (a create whose answer was lost would be made
  twice), and caps a long `Retry-After` by sleeping the cap instead of handing it back;
- `tenacity` could drive the loop, but the wait that reads `Retry-After` from the last answer,
  the give-up on a long one and the attempt count for messages are callbacks as long as the
  loop below (about 30 lines), so it would add a dependency without removing code;
- no small, maintained library gives a blocking, thread-safe token bucket without a storage
  backend (`pyrate-limiter` and `limits` bring backends; `aiolimiter` is asyncio only): it is
  about 15 lines (`RateLimit`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from hub.spi import ConnectorError

__all__ = [
    "HttpClient",
    "NoAnswer",
    "RateLimit",
    "Redactor",
    "RetryPolicy",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]*@")
_NO_ANSWER_RETRIED = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Transport failures worth another try; others (an unsupported scheme, a request httpx cannot
write) would fail the same way again."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now; None if absent/bad."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class NoAnswer(ConnectorError):
    """No HTTP answer after `attempts` tries; the message is redacted."""

    def __init__(self, message: str, *, attempts: int, cause: str, detail: str) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.cause = cause
        self.detail = detail

    @property
    def timed_out(self) -> bool:
        """Whether the last try timed out (the server may still have done the work)."""
        return self.cause.endswith("Timeout")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long an idempotent request is tried (see the module docstring)."""

    attempts: int = 3
    """Tries in all, the first included (1: never retried)."""
    backoff: float = 0.2
    """Seconds: the backoff before the second try is drawn in [0, backoff], then doubles."""
    max_backoff: float = 5.0
    """The backoff never exceeds this many seconds."""
    max_wait: float = 5.0
    """A Retry-After longer than this is handed back to the caller instead of waited for."""
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    """Statuses that mean "not done, try later"."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if min(self.backoff, self.max_backoff, self.max_wait) < 0:
            raise ValueError("backoff, max_backoff and max_wait must be >= 0")

    def backoff_before(self, retry: int, rng: random.Random) -> float:
        """The full-jitter wait before retry number `retry` (1 for the second try)."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return rng.uniform(0.0, ceiling)


class RateLimit:
    """A token bucket: `rate` requests per second on average, up to `burst` back to back.

    Thread-safe; a request that finds the bucket empty reserves the next token and sleeps
    until it is due, so waiting callers are served in turn.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is there; the seconds slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class Redactor:
    """Replaces known secret values and URL user-info in text with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Redact `secret` from now on (empty values are ignored)."""
        if secret:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        # Longest first: a secret that contains another is masked whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return _USERINFO.sub(rf"\g<scheme>{MASK}@", text)


class HttpClient:
    """An httpx client with retries, a rate limit, timeouts and redaction (module docstring).

    `transport` replaces the network (`httpx.MockTransport` for fault injection); `sleep` and
    `rng` make waits observable in tests.
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout = 10.0,
        retry: RetryPolicy | None = None,
        rate: RateLimit | None = None,
        secrets: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.rate = rate
        self.redact = Redactor(secrets)
        self.redact.add(httpx.URL(base_url).password)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        return f"HttpClient({self.redact(str(self._http.base_url))!r})"

    @property
    def headers(self) -> httpx.Headers:
        """The headers sent with every request (e.g. to set `Authorization` after a login)."""
        return self._http.headers

    def add_secret(self, secret: str | None) -> None:
        """Redact `secret` (e.g. a session token) from every later message and log line."""
        self.redact.add(secret)

    def request(
        self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Send the request (see the module docstring); the final answer, whatever its status.

        `kwargs` are httpx's (`params`, `json`, `content`, `headers`, `timeout`, ...). Raises
        NoAnswer when no try got an answer.
        """
        request = self._http.build_request(method, url, **kwargs)
        attempts = self.retry.attempts if idempotent else 1
        tried = 0
        while True:
            tried += 1
            if self.rate is not None:
                self.rate.acquire()
            try:
                response = self._http.send(request)
            except httpx.TransportError as e:
                if tried >= attempts or not isinstance(e, _NO_ANSWER_RETRIED):
                    raise self._no_answer(request, e, tried) from None
                wait = self.retry.backoff_before(tried, self._rng)
                self._log_retry(request, type(e).__name__, tried, attempts, wait)
            else:
                if response.status_code not in self.retry.statuses or tried >= attempts:
                    return response
                said = parse_retry_after(response.headers.get("Retry-After"))
                if said is not None and said > self.retry.max_wait:
                    return response  # the caller schedules a wait that long
                wait = self.retry.backoff_before(tried, self._rng) if said is None else said
                response.close()
                self._log_retry(request, f"HTTP {response.status_code}", tried, attempts, wait)
            self._sleep(wait)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self, request: httpx.Request) -> str:
        return self.redact(f"{request.method} {request.url}")

    def _no_answer(self, request: httpx.Request, error: Exception, tried: int) -> NoAnswer:
        cause = type(error).__name__
        detail = self.redact(str(error))
        message = f"{self._where(request)}: {cause}: {detail or 'no details'}"
        if tried > 1:
            message += f" (after {tried} attempts)"
        log.warning("%s", message)
        return NoAnswer(message, attempts=tried, cause=cause, detail=detail)

    def _log_retry(
        self, request: httpx.Request, why: str, tried: int, attempts: int, wait: float
    ) -> None:
        log.info(
            "%s: %s; try %d of %d in %.2f s", self._where(request), why, tried + 1, attempts, wait
        )
