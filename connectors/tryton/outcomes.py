"""How a Tryton error becomes a write's Outcome (shared by the timesheet and the note sinks).

Tryton's refusals (UserError) are `rejected` with Tryton's message and what to do about it;
transport errors, timeouts, 5xx, server crashes and a lost session are `retryable`.
"""

from __future__ import annotations

from collections.abc import Callable

from connectors.tryton.client import (
    TrytonError,
    TrytonLoginError,
    TrytonUnavailable,
    TrytonUserError,
)
from hub.spi import Delta, Outcome

__all__ = ["outcome_of", "refusal"]

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
