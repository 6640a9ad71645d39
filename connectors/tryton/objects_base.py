"""What every Tryton source object is made of: `TrytonObject` (which records of which model,
the fields read, how a row becomes a record) and the value conversions rows share.

Conventions: keys are Tryton ids as text; a many-to-one field is the target's id as text;
decimals are text, durations seconds, dates ISO text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors.tryton.client import Domain
from hub.spi import ObjectSchema

__all__ = [
    "ARCHIVED_TOO",
    "Row",
    "TrytonObject",
    "date_text",
    "decimal_text",
    "first_id",
    "grand",
    "ref",
    "related",
    "seconds",
]

ARCHIVED_TOO = {"active_test": False}
"""The context that reads archived (inactive) records too."""

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TrytonObject:
    """One source object: which records of which model, and how a row becomes a record.

    `fields` are the Avro fields (name, type) of the record, in order; `read` the Tryton field
    names to read (dotted `party.name` reads a related record's field, `lines.x` each line's). `follow` lists the
    (path, model) of the related records whose changes change the record (`("party",
    "party.party")` for `party.name`): their stamps are polled too.
    """

    name: str
    model: str
    domain: Domain
    read: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]
    convert: Callable[[Row], dict[str, Any]]
    context: Mapping[str, Any] = field(default_factory=dict)
    follow: tuple[tuple[str, str], ...] = ()
    enrich: Callable[[Any, list[dict[str, Any]]], None] | None = None
    """Adds to a page of rows, in place, what one read cannot give (with more calls on the
    TrytonClient it is passed), before they are converted (an invoice's project)."""

    def schema(self) -> ObjectSchema:
        avro = []
        for name, kind in self.fields:
            if kind.endswith("?"):
                avro.append({"name": name, "type": ["null", kind[:-1]], "default": None})
            else:
                avro.append({"name": name, "type": kind})
        record = {"type": "record", "name": f"tryton_{self.name}", "fields": avro}
        return ObjectSchema(object=self.name, key_field="id", schema=record)


# -- value conversions ---------------------------------------------------------------------


def ref(value: Any) -> str | None:
    """A many-to-one id as text (None stays None)."""
    return None if value is None else str(value)


def decimal_text(value: Any) -> str | None:
    return None if value is None else str(Decimal(value))


def date_text(value: Any) -> str | None:
    return None if value is None else dt.date.isoformat(value)


def seconds(value: Any) -> float | None:
    return None if value is None else float(dt.timedelta.total_seconds(value))


def related(row: Row, name: str, attr: str) -> Any:
    """`attr` of the related record read as `name.attr` (Tryton answers `{name.: {...}}`)."""
    related = row.get(f"{name}.")
    return related.get(attr) if isinstance(related, Mapping) else None


def grand(row: Row, name: str, via: str, attr: str) -> Any:
    """`attr` of the record related to the related one, read as `name.via.attr`."""
    related = row.get(f"{name}.")
    inner = related.get(f"{via}.") if isinstance(related, Mapping) else None
    return inner.get(attr) if isinstance(inner, Mapping) else None


def first_id(values: Any) -> str | None:
    return str(values[0]) if values else None
