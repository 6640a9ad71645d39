"""How one write attempt becomes its Outcome (shared by the ERP and the CRM sinks).

`attempt(delta, write)` runs a writer: what it returns is `applied`; a delta it cannot write
as given (`Refused`) is `rejected`; a write Tryton answered but does not hold (`Mismatch`) is
`retryable`. Tryton's refusals (UserError) are `rejected` with Tryton's message and what to do
about it; transport errors, timeouts, 5xx, server crashes and a lost session are `retryable`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.tryton.client import (
    TrytonError,
    TrytonLoginError,
    TrytonUnavailable,
    TrytonUserError,
)
from connectors.tryton.lines import Refused
from hub.spi import Delta, Outcome

__all__ = ["Mismatch", "attempt", "outcome_of", "refusal"]


class Mismatch(Exception):
    """Tryton answered success but the record does not read back as written."""


Write = Callable[[Delta], tuple[str, dict[str, Any]]]
"""Writes one delta: (the target key, details for the WriteAttempted event)."""


def attempt(
    delta: Delta, write: Write, explain: Callable[[TrytonUserError], str] | None = None
) -> Outcome:
    """The outcome of writing `delta` with `write` (`explain`: Tryton's refusals in words)."""
    key = delta.idempotency_key
    try:
        target, details = write(delta)
    except Refused as e:
        return Outcome(key, "rejected", delta.target_key, reason=str(e))
    except Mismatch as e:
        return Outcome(key, "retryable", delta.target_key, reason=str(e))
    except TrytonError as e:
        return outcome_of(delta, e, explain or refusal)
    return Outcome(key, "applied", target, details=details)


Hints = tuple[tuple[str, str], ...]
_DEFAULT_HINT = "fix the record in Tryton or change the source record, then retry"


def refusal(error: TrytonUserError, hints: Hints = ()) -> str:
    """Tryton's message, and what to do about it: the hint of the first of `hints`
    ((word, hint)) whose word is in the message, else a general one."""
    text = f"{error.message} {error.description}".lower()
    hint = next((h for word, h in hints if word in text), None) or _DEFAULT_HINT
    said = error.message + (f" ({error.description})" if error.description else "")
    return f"Tryton refused: {said} — {hint}"


def outcome_of(
    delta: Delta, error: TrytonError, explain: Callable[[TrytonUserError], str] = refusal
) -> Outcome:
    """The outcome of `delta` whose write raised `error`."""
    key, target = delta.idempotency_key, delta.target_key
    if isinstance(error, TrytonUserError):
        return Outcome(
            key,
            "rejected",
            target,
            reason=explain(error),
            details={"tryton_message": error.message},
        )
    if isinstance(error, TrytonUnavailable):
        return Outcome(key, "retryable", target, reason=str(error), retry_after=error.retry_after)
    if isinstance(error, TrytonLoginError):
        return Outcome(key, "retryable", target, reason=str(error))
    return Outcome(key, "retryable" if error.retryable else "rejected", target, reason=str(error))
