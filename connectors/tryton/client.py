"""Tryton JSON-RPC over httpx: the only module that knows URLs and authentication.

`TrytonClient(url, database, user, password)` logs in on first use (`common.db.login` →
`Authorization: Session base64(user:uid:session)`), loads the user's context
(`res.user.get_preferences`) and sends it as the last parameter of every model call. Values
are encoded and decoded the way Tryton does (`codec.py`: datetime, date, time, timedelta,
Decimal, bytes as `{"__class__": ...}` objects). An expired session is renewed once,
transparently.

HTTP goes through the connector kit's `HttpClient` (connectors/_kit/http.py): calls that only
read (`search`, `read`, `search_read`, the login, ...) are retried on a failed connection, a
timeout or HTTP 429/502/503/504 with backoff and `Retry-After`; calls that write (`create`,
`write`, `delete`, buttons) are sent once, since a create whose answer was lost would be made
twice: the sink finds such a line by its marker, and the hub's outbound retries the write. An
optional rate limit (`rate_limit`, requests per second) spaces all calls.

Errors (errors.py):

    ConnectorError
    └── TrytonError                 base; `retryable` says whether trying again can help
        ├── TrytonUserError         Tryton refused (UserError / UserWarning): `message`,
        │                           `description` in Tryton's words; not retryable
        ├── TrytonUnavailable       transport failure, timeout, HTTP 429/5xx, a concurrent
        │                           modification: retryable (`retry_after` when the server said)
        ├── TrytonServerError       Tryton crashed on the call (HTTP 200 with a Python
        │                           exception): retryable, since it is the server's fault
        └── TrytonRequestError      method not exposed, bad arguments (HTTP 403/422/4xx):
            │                       fix the call; not retryable
            └── TrytonLoginError    the login was refused: fix `user` / `password` /
                                    `database`; the calls themselves may be fine

The password and the session token never appear in a message, a repr or a log line.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from connectors._kit.http import HttpClient, NoAnswer, RateLimit, RetryPolicy
from connectors.tryton.codec import decode, encode
from connectors.tryton.errors import (
    SessionExpired,
    TrytonError,
    TrytonLoginError,
    TrytonRequestError,
    TrytonServerError,
    TrytonUnavailable,
    TrytonUserError,
    http_error,
    rpc_error,
)

__all__ = [
    "Domain",
    "TrytonClient",
    "TrytonError",
    "TrytonLoginError",
    "TrytonRequestError",
    "TrytonServerError",
    "TrytonUnavailable",
    "TrytonUserError",
    "decode",
    "encode",
]

Domain = list[Any]
"""A Tryton search domain, e.g. `[("type", "=", "task")]`."""

_READS = frozenset({"read", "search", "search_read", "search_count", "fields_get", "default_get"})
"""Model methods that change nothing: safe to send again when the answer was lost."""
_OTHER_READS = frozenset(
    {"common.db.login", "common.server.version", "common.db.list", "model.res.user.get_preferences"}
)


class TrytonClient:
    """A logged-in JSON-RPC session on one Tryton database.

    `calls` counts the RPC calls made (e.g. `calls["model.timesheet.line.create"]`; a read
    retried by the HTTP client counts once). `retry` and `rate_limit` (requests per second)
    tune the kit's HTTP client; `transport` replaces the network (fault injection).
    """

    def __init__(
        self,
        url: str,
        database: str,
        user: str,
        password: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limit: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = f"{url.rstrip('/')}/{database}/rpc/"
        self.database = database
        self.user = user
        self._password = password
        self._http = HttpClient(
            timeout=timeout,
            retry=retry or RetryPolicy(attempts=3, backoff=0.5),
            rate=None if rate_limit is None else RateLimit(rate_limit),
            secrets=[password],
            transport=transport,
        )
        self._where = self._http.redact(self.url)
        self._context: dict[str, Any] | None = None
        self.uid: int | None = None
        self.calls: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"TrytonClient({self._where!r}, user={self.user!r})"

    # -- sessions ---------------------------------------------------------------------------

    def login(self) -> None:
        """Open a session and load the user's context; TrytonRequestError if refused."""
        self._http.headers.pop("Authorization", None)
        try:
            result = self._post("common.db.login", [self.user, {"password": self._password}])
        except TrytonRequestError as e:
            fixes = {
                401: "wrong user or password: check `user` and `password`",
                403: "wrong user or password, or too many failed logins: check `user` and "
                "`password`, then wait a minute",
                404: f"no database {self.database!r} on this server: check `database` (a Tryton "
                "server answers only for the databases it was started with)",
            }
            fix = fixes.get(
                e.status or 0,
                "is `url` the server's base URL, e.g. http://127.0.0.1:8000 (without the "
                "database), and `database` the database's name?",
            )
            raise TrytonLoginError(
                f"Tryton at {self._where} refused the login of user {self.user!r}: {fix} ({e})",
                e.status,
            ) from None
        uid, session = result[0], result[1]
        token = base64.b64encode(f"{self.user}:{uid}:{session}".encode()).decode("ascii")
        self._http.add_secret(str(session))
        self._http.add_secret(token)
        self._http.headers["Authorization"] = f"Session {token}"
        self.uid = int(uid)
        self._context = self._post("model.res.user.get_preferences", [True, {}])

    @property
    def context(self) -> dict[str, Any]:
        """The user's context (company, language, ...), logging in first if needed."""
        if self._context is None:
            self.login()
        assert self._context is not None
        return self._context

    def close(self) -> None:
        self._http.close()

    # -- calls ------------------------------------------------------------------------------

    def call(self, method: str, *params: Any) -> Any:
        """Send `method(*params)` as is (no context added); renews an expired session once."""
        if self._context is None:
            self.login()
        try:
            return self._post(method, list(params))
        except SessionExpired:
            self.login()
            return self._post(method, list(params))

    def model(
        self, model: str, method: str, *args: Any, context: Mapping[str, Any] | None = None
    ) -> Any:
        """Call `model.<model>.<method>(*args, context)`; `context` is merged into the user's."""
        ctx = self.context if not context else {**self.context, **context}
        return self.call(f"model.{model}.{method}", *args, ctx)

    def search(
        self,
        model: str,
        domain: Domain,
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[int]:
        order_ = [list(o) for o in order] if order is not None else None
        return list(self.model(model, "search", domain, offset, limit, order_, context=context))

    def search_read(
        self,
        model: str,
        domain: Domain,
        fields: Sequence[str],
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        order_ = [list(o) for o in order] if order is not None else None
        return list(
            self.model(
                model,
                "search_read",
                domain,
                offset,
                limit,
                order_,
                list(fields),
                context=context,
            )
        )

    def read(
        self,
        model: str,
        ids: Sequence[int],
        fields: Sequence[str],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        return list(self.model(model, "read", list(ids), list(fields), context=context))

    def create(
        self,
        model: str,
        values: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> list[int]:
        created = self.model(model, "create", [dict(v) for v in values], context=context)
        return [int(i) for i in created]

    def write(
        self,
        model: str,
        ids: Sequence[int],
        values: Mapping[str, Any],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.model(model, "write", list(ids), dict(values), context=context)

    def delete(
        self, model: str, ids: Sequence[int], *, context: Mapping[str, Any] | None = None
    ) -> None:
        self.model(model, "delete", list(ids), context=context)

    def button(
        self,
        model: str,
        name: str,
        ids: Sequence[int],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """Click button `name` on records `ids` (e.g. 'invoice' on project.work); `context`
        e.g. `{"company": id}` acts in another of the user's companies."""
        return self.model(model, name, list(ids), context=context)

    # -- wire -------------------------------------------------------------------------------

    def _post(self, method: str, params: list[Any]) -> Any:
        self.calls[method] += 1
        body = json.dumps({"id": 1, "method": method, "params": params}, default=encode)
        try:
            response = self._http.request(
                "POST",
                self.url,
                content=body,
                headers={"Content-Type": "application/json"},
                idempotent=_reads_only(method),
            )
        except NoAnswer as e:
            tries = f" (after {e.attempts} attempts)" if e.attempts > 1 else ""
            if e.timed_out:
                raise TrytonUnavailable(
                    f"{method} on {self._where} timed out ({e.cause}){tries}; the server is slow "
                    "or busy: it may still finish the call"
                ) from None
            raise TrytonUnavailable(
                f"cannot reach Tryton at {self._where} for {method}: {e.cause}: {e.detail}{tries}"
            ) from None
        if response.status_code != 200:
            raise http_error(method, self._where, response, self._http.redact)
        try:
            data = json.loads(response.content, object_hook=decode)
        except ValueError:
            raise TrytonServerError(
                f"{method}: Tryton answered with invalid JSON: "
                f"{self._http.redact(response.text[:200])!r}"
            ) from None
        error = data.get("error") if isinstance(data, dict) else None
        if error:
            raise rpc_error(method, error, self._http.redact)
        return data.get("result")


def _reads_only(method: str) -> bool:
    """Whether the RPC `method` changes nothing (so it may be sent again)."""
    return method in _OTHER_READS or (
        method.startswith("model.") and method.rsplit(".", 1)[-1] in _READS
    )
