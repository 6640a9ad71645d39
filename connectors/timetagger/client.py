"""The TimeTagger HTTP API (v2): the only module that knows its URLs and its auth header.

    ConnectorError                   (hub.errors)
    └── TimeTaggerError              anything the API call could not do
        ├── TimeTaggerUnavailable    connection failed (after retries), 429 or 5xx: try later;
        │                            `retry_after` is the server's Retry-After in seconds
        └── TimeTaggerRefused        any other 4xx: `status` and the server's `message`

HTTP goes through the connector kit's `HttpClient` (connectors/_kit/http.py). Every call is
safe to repeat (TimeTagger keeps the version with the larger client `mt`), so connection
errors, timeouts and 429/502/503/504 are retried `retries` times with a full-jitter backoff
from `backoff` seconds, waiting `Retry-After` when it is at most a few seconds; a longer one
is the caller's (TimeTaggerUnavailable.retry_after). An optional rate limit (`rate_limit`,
requests per second) spaces the calls. The token is sent in the `authtoken` header and never
appears in a message, a repr or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors._kit.http import HttpClient, NoAnswer, RateLimit, RetryPolicy, parse_retry_after
from hub.spi import ConnectorError

__all__ = [
    "PutResult",
    "TimeTaggerClient",
    "TimeTaggerError",
    "TimeTaggerRefused",
    "TimeTaggerUnavailable",
    "Updates",
    "parse_retry_after",
]

Item = dict[str, Any]


class TimeTaggerError(ConnectorError):
    """A TimeTagger API call failed."""


class TimeTaggerUnavailable(TimeTaggerError):
    """TimeTagger cannot answer now (network, 429, 5xx); `retry_after` in seconds if it said."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class TimeTaggerRefused(TimeTaggerError):
    """TimeTagger refused the request (a 4xx other than 429); `message` is its own text."""

    def __init__(self, message: str, *, status: int, server_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


@dataclass(frozen=True, slots=True)
class Updates:
    """The answer of `GET updates?since=`: items with server time `st >= since`.

    `reset` means the server's data was reset after `since`: the answer holds every item and a
    reader must start over.
    """

    server_time: float
    reset: bool
    records: list[Item]
    settings: list[Item]


@dataclass(frozen=True, slots=True)
class PutResult:
    """The answer of a PUT: keys accepted (which may still lose to a newer `mt`) and failed
    keys with TimeTagger's error message for each."""

    accepted: list[str]
    failed: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class TimeTaggerClient:
    """A TimeTagger account reached at `url` (e.g. http://127.0.0.1:8082/timetagger) with an
    API token. `transport` replaces the network (httpx.MockTransport, for fault injection)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.2,
        rate_limit: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._http = HttpClient(
            self.url + "/api/v2/",
            headers={"authtoken": token},
            timeout=timeout,
            retry=RetryPolicy(attempts=retries + 1, backoff=backoff),
            rate=None if rate_limit is None else RateLimit(rate_limit),
            secrets=[token],
            transport=transport,
        )
        self._where = self._http.redact(self.url)

    def __repr__(self) -> str:
        return f"TimeTaggerClient({self._where!r})"

    # -- endpoints ----------------------------------------------------------------------------

    def updates(self, since: float) -> Updates:
        """Every record and setting with `st >= since`, the server time and the reset flag."""
        data = self._json("GET", "updates", params={"since": repr(float(since))})
        try:
            return Updates(
                server_time=float(data["server_time"]),
                reset=bool(data["reset"]),
                records=list(data["records"]),
                settings=list(data["settings"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise self._protocol("updates", data, e) from None

    def put_records(self, records: Sequence[Mapping[str, Any]]) -> PutResult:
        """PUT records (each with key, t1, t2, ds, mt)."""
        return self._put("records", records)

    def settings(self) -> list[Item]:
        """Every setting (key, value, mt, st)."""
        data = self._json("GET", "settings")
        try:
            return list(data["settings"])
        except (KeyError, TypeError) as e:
            raise self._protocol("settings", data, e) from None

    def put_settings(self, settings: Sequence[Mapping[str, Any]]) -> PutResult:
        """PUT settings (each with key, value, mt)."""
        return self._put("settings", settings)

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _put(self, what: str, items: Sequence[Mapping[str, Any]]) -> PutResult:
        data = self._json("PUT", what, json=[dict(item) for item in items])
        try:
            failed = [str(k) for k in data["failed"]]
            errors = [str(e) for e in data["errors"]]
            return PutResult(
                accepted=[str(k) for k in data["accepted"]],
                failed=dict(zip(failed, errors, strict=False)),
                errors=errors,
            )
        except (KeyError, TypeError) as e:
            raise self._protocol(what, data, e) from None

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise TimeTaggerError(
                f"TimeTagger at {self._where} answered {method} {path} with something that is "
                f"not JSON: {self._http.redact(response.text[:200])!r}; is `url` the TimeTagger "
                "base URL (ending in /timetagger)?"
            ) from None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except NoAnswer as e:
            raise TimeTaggerUnavailable(
                f"cannot reach TimeTagger at {self._where} ({method} {path}): "
                f"{e.cause}: {e.detail or 'no details'} (after {e.attempts} attempts)"
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise TimeTaggerUnavailable(
                f"TimeTagger at {self._where} answered {method} {path} with {status}: "
                f"{self._http.redact(response.text[:200])}",
                status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status >= 400:
            hint = " (check the `token` option)" if status == 401 else ""
            said = self._http.redact(response.text[:500])
            raise TimeTaggerRefused(
                f"TimeTagger at {self._where} refused {method} {path} with {status}: {said}{hint}",
                status=status,
                server_message=said,
            )
        return response

    def _protocol(self, what: str, data: Any, error: Exception) -> TimeTaggerError:
        return TimeTaggerError(
            f"TimeTagger at {self._where} answered {what} in an unexpected shape ({error!r}): "
            f"{self._http.redact(str(data)[:200])}; this connector is tested against "
            "TimeTagger 26.1"
        )
