"""Tryton's JSON encoding of values: dates, times, durations, decimals and bytes travel as
`{"__class__": ...}` objects. `encode` is a `json.dumps` default, `decode` a `json.loads`
object hook; naive datetimes are UTC.
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any

__all__ = ["decode", "encode"]

_DATETIME_PARTS = ("year", "month", "day", "hour", "minute", "second", "microsecond")


def encode(value: Any) -> Any:
    """`json.dumps` default: Tryton's encoding of dates, times, durations, decimals, bytes."""
    if isinstance(value, dt.datetime):
        return {"__class__": "datetime", **{k: getattr(value, k) for k in _DATETIME_PARTS}}
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.time):
        return {
            "__class__": "time",
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} to Tryton: {value!r}")


def decode(obj: dict[str, Any]) -> Any:
    """`json.loads` object hook: the inverse of `encode` (naive datetimes are UTC)."""
    kind = obj.get("__class__")
    if kind is None:
        return obj
    if kind == "datetime":
        return dt.datetime(*(obj[k] for k in _DATETIME_PARTS))
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if kind == "time":
        return dt.time(obj["hour"], obj["minute"], obj["second"], obj["microsecond"])
    if kind == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "bytes":
        return base64.b64decode(obj["base64"])
    return obj
