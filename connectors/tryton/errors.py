"""Tryton's errors as typed exceptions (see the hierarchy in client.py), and how an HTTP answer
or a JSON-RPC `error` member becomes one. Every text is redacted before it is kept."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import httpx

from connectors._kit.http import parse_retry_after
from hub.spi import ConnectorError

__all__ = [
    "SessionExpired",
    "TrytonError",
    "TrytonLoginError",
    "TrytonRequestError",
    "TrytonServerError",
    "TrytonUnavailable",
    "TrytonUserError",
    "http_error",
    "rpc_error",
]


class TrytonError(ConnectorError):
    """A Tryton call failed; `retryable` says whether the same call may succeed later."""

    retryable = False


class TrytonUserError(TrytonError):
    """Tryton refused the call for a business reason (its UserError or UserWarning)."""

    def __init__(self, method: str, message: str, description: str = "") -> None:
        text = f"{message} ({description})" if description else message
        super().__init__(f"Tryton refused {method}: {text}")
        self.message = message
        self.description = description


class TrytonUnavailable(TrytonError):
    """Tryton could not be reached or asked to come back later; nothing was done."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TrytonServerError(TrytonError):
    """Tryton raised an unexpected exception while handling the call."""

    retryable = True


class TrytonRequestError(TrytonError):
    """The call itself is wrong (permissions, arguments); `status` is the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TrytonLoginError(TrytonRequestError):
    """Tryton refused the login (user, password or database)."""


class SessionExpired(TrytonRequestError):
    """HTTP 401 on a call: log in again and repeat."""


def http_error(
    method: str, url: str, response: httpx.Response, redact: Callable[[str], str]
) -> TrytonError:
    status = response.status_code
    text = redact(_body_text(response))
    if status == 401 and method != "common.db.login":
        return SessionExpired(f"{method}: session expired (HTTP 401)")
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return TrytonUnavailable(
            f"{method} on {url}: HTTP {status} {response.reason_phrase}: {text}", retry_after
        )
    hints = {
        401: "wrong user or password",
        403: "the method is not exposed over RPC, or the user lacks the access right",
        404: "unknown database: check `database`",
        422: "the arguments do not fit the method",
    }
    hint = hints.get(status, "the request was refused")
    return TrytonRequestError(f"{method} on {url}: HTTP {status} ({hint}): {text}", status)


def _body_text(response: httpx.Response) -> str:
    """The answer's text for a message: an HTML error page becomes its plain text."""
    text = response.text
    if "html" in response.headers.get("content-type", "") or text.lstrip().startswith("<"):
        text = html.unescape(re.sub(r"<title>.*?</title>|<[^>]*>", " ", text, flags=re.S))
    return " ".join(text.split())[:300]


def rpc_error(method: str, error: Any, redact: Callable[[str], str]) -> TrytonError:
    """Turn the `error` member of a JSON-RPC answer into a typed exception (its texts
    redacted)."""
    error = _redacted(error, redact)
    if isinstance(error, list | tuple) and len(error) == 2:
        kind, args = error
        if kind == "UserError" and isinstance(args, list | tuple) and args:
            return TrytonUserError(
                method, str(args[0]), str(args[1] or "") if len(args) > 1 else ""
            )
        if kind == "UserWarning" and isinstance(args, list | tuple) and len(args) >= 2:
            description = str(args[2] or "") if len(args) > 2 else ""
            return TrytonUserError(method, str(args[1]), description)
        if kind == "ConcurrencyException":
            return TrytonUnavailable(f"{method}: record modified concurrently: {args}")
        if kind == "LoginException":
            return TrytonRequestError(f"{method}: Tryton asks for a login parameter: {args}")
        last = str(args).strip().splitlines()[-1:] if args else []
        return TrytonServerError(
            f"{method}: Tryton raised an error: {kind}" + (f" ({last[0]})" if last else "")
        )
    return TrytonServerError(f"{method}: Tryton answered with an error: {error!r}")


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    """`value` (decoded JSON) with every text in it redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redacted(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    return value
