"""What a step sees when it runs: the record context, the lookup, and how it reports failure.

    MappingError
    ├── MissingLinkError        `link` found no linked record yet (entity, system, object, key)
    └── MissingTargetKeyError   `target_key` found no key yet (system, canonical_id)

Steps never raise MappingError themselves: they raise `StepFailure` with the *what* and *how to
fix*; the pipeline adds *where* (field and rule) and turns it into `hub.errors.MappingError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from hub.errors import MappingError

__all__ = [
    "Context",
    "Lookup",
    "MissingLinkError",
    "MissingTargetKeyError",
    "StepFailure",
    "as_text",
    "path_steps",
    "show",
    "walk",
]


class Lookup(Protocol):
    """Identity answers a mapping needs; the hub backs it with the links projection."""

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        """The canonical id of the `entity` linked to source record system/object/key."""
        ...

    def target_key(self, system: str, canonical_id: str) -> str | None:
        """The key target `system` uses for `canonical_id`, if it has been written there."""
        ...

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        """Field `field` of a canonical entity (None if absent); `"*"` → all its fields, or
        None when the entity does not exist or is deleted."""
        ...

    def object_key(self, system: str, object: str, canonical_id: str) -> str | None:
        """The key of `canonical_id`'s record of system/object (any role), if it has one."""
        ...

    def referencing(
        self, entity: str, field: str, canonical_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """(canonical id, fields) of every live `entity` whose `field` is `canonical_id` (any
        text value of the field, in fact; targets only: an inbound lookup raises StepFailure)."""
        ...


class Context:
    """One record being mapped: its fields, key, system, object, and the identity lookup."""

    __slots__ = ("key", "lookup", "object", "record", "system")

    def __init__(
        self, record: Mapping[str, Any], key: str, system: str, object: str, lookup: Lookup
    ) -> None:
        self.record = record
        self.key = key
        self.system = system
        self.object = object
        self.lookup = lookup


class StepFailure(Exception):
    """A step cannot handle its value; `message` says what is wrong and how to fix it.

    `missing` is set when the value is fine but an identity is not known yet: the arguments
    of the lookup that found nothing (entity, system, object, key for `link`; system,
    canonical id for `target_key`).
    """

    def __init__(self, message: str, missing: tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing


class MissingLinkError(MappingError):
    """A `link` step found no linked record (yet): capturing it later resolves the failure."""

    def __init__(
        self, message: str, *, field: str, rule: str, value: object, missing: tuple[str, ...]
    ) -> None:
        super().__init__(message, field=field, rule=rule, value=value)
        self.entity, self.system, self.object, self.key = missing


class MissingTargetKeyError(MappingError):
    """A `target_key` step found no key: the record is not written to that target yet."""

    def __init__(
        self, message: str, *, field: str, rule: str, value: object, missing: tuple[str, ...]
    ) -> None:
        super().__init__(message, field=field, rule=rule, value=value)
        self.system, self.canonical_id = missing


def show(value: Any, limit: int = 60) -> str:
    """`'abc' (str)`: a value as an error message shows it, shortened to about `limit` chars."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the real problem
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({type(value).__name__})"


def as_text(value: Any) -> str:
    """A scalar as text: str as is, bools as true/false, numbers plainly, dates in ISO form.

    Raises StepFailure for lists, dicts and other values that have no single text form.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, Decimal):
            return format(value, "f") if value.is_finite() else str(value)
    except ValueError as exc:  # ints beyond Python's digit limit
        raise StepFailure(f"cannot write {show(value)} as text: {exc}") from None
    if isinstance(value, dt.date):  # includes datetime
        return value.isoformat()
    raise StepFailure(
        f"cannot use {show(value)} as text: it has no single text form; "
        "pick one item with a dotted path (e.g. 'lines.0.code')"
    )


PathSteps = tuple[tuple[str, int | None], ...]


def path_steps(path: str) -> PathSteps:
    """A dotted field path (`customer.code`, `lines.0.amount`) as `walk` follows it."""
    return tuple((part, int(part) if part.isdigit() else None) for part in path.split("."))


def walk(value: Any, steps: PathSteps) -> Any:
    """The value at a field path: dict keys, list indexes for digits; None when anything on
    the way is missing."""
    for key, index in steps:
        if type(value) is dict or isinstance(value, Mapping):
            value = value.get(key)
        elif index is not None and isinstance(value, list):
            value = value[index] if index < len(value) else None
        else:
            return None
    return value
