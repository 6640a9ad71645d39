"""Canonical field types: whether a mapped value fits its canonical field, and its stored form.

The canonical projection checks every mapped field against the entity's canonical Avro schema
(schemas/canonical/) before it stores it. The common cases (text, booleans, integers in range,
dates) take a fast converter per Python type; the rest fastavro's general validator.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import fastavro.validation

from hub.canonical_schemas import BUILTIN, CanonicalSchemas
from hub.values import to_json

__all__ = ["FieldTypes"]

_SIMPLE = {str: "string", bool: "boolean", type(None): "null"}
_SLOW = object()
"""A fast converter's answer when the value needs the general check."""

Converter = Callable[[Any], Any] | None
"""Stored form of a value of one Python type, or _SLOW; None: the value as it is."""


def _long(value: int) -> Any:
    return value if -(2**63) <= value < 2**63 else _SLOW


def _int(value: int) -> Any:
    return value if -(2**31) <= value < 2**31 else _SLOW


def _iso_date(value: dt.date) -> Any:
    return value.isoformat()


def _fast_converters(avro_type: Any) -> dict[type, Converter]:
    """Python type → how a value of exactly that type fits `avro_type` without fastavro's
    general validator (the common cases); other types take the slow path."""
    out: dict[type, Converter] = {}
    for member in avro_type if isinstance(avro_type, list) else [avro_type]:
        if member in ("string", "boolean", "null"):
            out[{"string": str, "boolean": bool, "null": type(None)}[member]] = None
        elif member == "long":
            out[int] = _long
        elif member == "int":
            out[int] = _int
        elif isinstance(member, dict) and member.get("logicalType") == "date":
            out[dt.date] = _iso_date
    return out


class FieldTypes:
    """Per-entity canonical field types, for validating mapped values (`schemas`: those in
    force, the firm's own included)."""

    def __init__(self, schemas: CanonicalSchemas = BUILTIN) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        self.fast: dict[str, dict[str, dict[type, Converter]]] = {}
        for entity in schemas.entities():
            parsed = schemas.schema(entity).parsed
            self.types[entity] = {f["name"]: f["type"] for f in parsed["fields"]}
            self.fast[entity] = {
                name: _fast_converters(t) for name, t in self.types[entity].items()
            }

    def stored(self, entity: str, fields: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """(`fields` as stored (see to_json), None), or ({}, the first field whose value does not
        fit its canonical type: `problem` says why)."""
        fast = self.fast.get(entity, {})
        out = {}
        for name, value in fields.items():
            conv = fast.get(name, _NO_FAST).get(type(value), _SLOW)
            if conv is None:
                out[name] = value
                continue
            if conv is not _SLOW:
                stored = conv(value)  # type: ignore[operator]
                if stored is not _SLOW:
                    out[name] = stored
                    continue
            if self.problem(entity, name, value) is not None:
                return {}, name
            out[name] = to_json(value)
        return out, None

    def problem(self, entity: str, field: str, value: Any) -> str | None:
        types = self.types.get(entity)
        if types is None:
            return f"{entity} is not a canonical entity"
        t = types.get(field)
        if t is None:
            return f"{entity} has no field {field!r} (known: {', '.join(sorted(types))})"
        simple = _SIMPLE.get(type(value))
        if simple is not None and (t == simple or (isinstance(t, list) and simple in t)):
            return None  # the common cases, without fastavro's general validator
        try:
            ok = fastavro.validation.validate(value, t, raise_errors=False)
        except Exception:
            ok = False
        if not ok:
            return f"value {value!r} ({type(value).__name__}) does not fit {entity}.{field}"
        return None


_NO_FAST: dict[type, Converter] = {}
