"""State bodies straight from the stored form: one generated function per flat state record.

The published state of an entity is its stored fields (JSON: dates and timestamps as ISO text,
decimals as plain text) encoded as the state record. Made in two steps — a datum (a new dict
with every field, the dates, timestamps and decimals converted) and then the generated Avro
encoder (hub.codec.encoder) — that was ≈ 4.5 µs a state, a third of the publisher's Python
(bench/publish.py). The function generated here reads the stored dict as it is and writes the
same bytes in one pass; the pieces of the values that come again and again (a date, a rate, a
project's id) are remembered, a bounded number per field.

It takes only the plain stored form of each field: text for strings, dates (ISO), timestamps
(ISO with an offset) and decimals, an int for int/long, a bool for boolean, None or a missing
key for no value. Anything else raises one of `SLOW` and the caller makes the datum and asks the
two-step path, so every lenient conversion and every error stays that path's own. Its bytes
equal that path's on every value it takes (hypothesis-tested, tests/unit/test_stored_encoder.py).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

from hub.codec.encoder import _EXACT, Slow, avro_long
from hub.codec.encoder import _SLOW as SLOW

__all__ = ["SLOW", "StoredEncoder", "Unsupported", "compile_stored"]

StoredEncoder = Callable[[dict[str, Any], str | None], bytes]
"""`encode(fields, default_id)`: the state body; `default_id` is the `id` field's value when
the fields have no `id` key (None: the record has no such field to fill)."""

MEMO = 4096
"""Pieces remembered per field (a firm's projects, people, dates, rates fit; ids do not, and
then cost one dictionary lookup each)."""

_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


class Unsupported(Exception):
    """The record is not flat (or has a type the stored form does not map plainly)."""


def _date(text: str) -> int:
    return dt.date.fromisoformat(text).toordinal() - _EPOCH_DAY


def _micros(text: str) -> int:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise Slow  # local time to fastavro: the two-step path decides
    return (moment - _EPOCH) // _US


def _millis(text: str) -> int:
    return _micros(text) // 1000


def _decimal(scale: int, precision: int) -> Callable[[str], bytes]:
    """The unscaled two's-complement bytes (with their length) of a decimal's text, as the
    generated encoder writes them; Slow for what it leaves to fastavro."""

    def piece(text: str) -> bytes:
        d = decimal.Decimal(text)
        if not d.is_finite():
            raise Slow
        t = d.as_tuple()
        if len(t.digits) > precision or int(t.exponent) + scale < 0:
            raise Slow
        n = int(d.scaleb(scale, _EXACT))
        size = (abs(n).bit_length() + 8) // 8
        return avro_long(size) + n.to_bytes(size, "big", signed=True)

    return piece


_INT_BITS = {"int": 31, "long": 63}


def _kind(field_type: Any) -> tuple[str, Any]:
    """(what the stored value is read as, the Avro type) of a field's non-null type."""
    if isinstance(field_type, str):
        if field_type in ("string", "boolean", "int", "long"):
            return field_type, field_type
        raise Unsupported(f"type {field_type!r}")
    if isinstance(field_type, dict):
        base, logical = field_type.get("type"), field_type.get("logicalType")
        if base == "int" and logical == "date":
            return "date", field_type
        if base == "long" and logical in ("timestamp-micros", "timestamp-millis"):
            return logical, field_type
        if base == "bytes" and logical == "decimal":
            return "decimal", field_type
    raise Unsupported(f"type {field_type!r}")


class _Source:
    def __init__(self) -> None:
        self.lines = ["def encode(r, _id):"]
        self.consts: dict[str, Any] = {"_Slow": Slow, "_long": avro_long, "_MEMO": MEMO}
        self.parts: list[str] = []

    def const(self, name: str, value: Any) -> str:
        self.consts[name] = value
        return name

    def add(self, *lines: str) -> None:
        self.lines.extend("    " + line for line in lines)


def stored_source(parsed: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The source of `encode(fields, default_id)` for a flat record schema (as written or
    parsed by fastavro), and its namespace; Unsupported for anything else."""
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise Unsupported("not a record")
    src = _Source()
    for i, field in enumerate(parsed["fields"]):
        name, ftype = field["name"], field["type"]
        if isinstance(ftype, list):
            if len(ftype) != 2 or "null" not in ftype:
                raise Unsupported(f"field {name!r}: a union other than null and one type")
            other = 1 - ftype.index("null")
            prefix, null = avro_long(other), avro_long(1 - other)
            kind, avro = _kind(ftype[other])
        else:
            prefix, null = b"", None
            kind, avro = _kind(ftype)
        fetch = f"r.get({name!r}, _id)" if name == "id" else f"r.get({name!r})"
        v, u = f"_v{i}", f"_u{i}"
        src.add(f"{v} = {fetch}")
        src.add(f"if {v} is None:")
        src.add(f"    {u} = {null!r}" if null is not None else "    raise _Slow")
        _value(src, kind, avro, i, v, u, prefix)
        src.parts.append(u)
    src.add(f"return b''.join(({''.join(p + ', ' for p in src.parts)}))")
    return "\n".join(src.lines) + "\n", src.consts


def _value(src: _Source, kind: str, avro: Any, i: int, v: str, u: str, prefix: bytes) -> None:
    """The lines that set `u` to the union prefix and the piece of a present value `v`."""
    if kind == "boolean":
        yes, no = prefix + b"\x01", prefix + b"\x00"
        src.add(f"elif {v} is True:", f"    {u} = {yes!r}")
        src.add(f"elif {v} is False:", f"    {u} = {no!r}")
        src.add("else:", "    raise _Slow")
        return
    memo = src.const(f"_m{i}", {})
    if kind == "string":
        short = src.const(f"_p{i}", [prefix + avro_long(n) for n in range(64)])
        src.add(f"elif type({v}) is str:")
        src.add(f"    {u} = {memo}.get({v})")
        src.add(f"    if {u} is None:")
        src.add(f"        _s = {v}.encode()")
        src.add("        _n = len(_s)")
        src.add(f"        {u} = ({short}[_n] if _n < 64 else {prefix!r} + _long(_n)) + _s")
        # short ones only: a free-text field's first notes are not kept for the process's life
        src.add(f"        if _n < 64 and len({memo}) < _MEMO:", f"            {memo}[{v}] = {u}")
        src.add("else:", "    raise _Slow")
        return
    if kind in ("int", "long"):
        bits = _INT_BITS[kind]
        src.add(f"elif type({v}) is int and {-(2**bits)} <= {v} < {2**bits}:")
        src.add(f"    {u} = {memo}.get({v})")
        src.add(f"    if {u} is None:")
        src.add(f"        {u} = {prefix!r} + _long({v})")
        src.add(f"        if len({memo}) < _MEMO:", f"            {memo}[{v}] = {u}")
        src.add("else:", "    raise _Slow")
        return
    # date, timestamps, decimal: stored as text
    if kind == "decimal":
        src.const(f"_c{i}", _decimal(int(avro.get("scale", 0)), int(avro["precision"])))
    else:
        bits = 31 if kind == "date" else 63
        to_int = {"date": _date, "timestamp-micros": _micros, "timestamp-millis": _millis}[kind]
        src.const(f"_c{i}", to_int)
        src.const(f"_r{i}", range(-(2**bits), 2**bits))
        # an int given for a date or a timestamp is already its base value
        src.add(f"elif type({v}) is int and {-(2**bits)} <= {v} < {2**bits}:")
        src.add(f"    {u} = {prefix!r} + _long({v})")
    src.add(f"elif type({v}) is str:")
    src.add(f"    {u} = {memo}.get({v})")
    src.add(f"    if {u} is None:")
    if kind == "decimal":
        src.add(f"        {u} = {prefix!r} + _c{i}({v})")
    else:
        src.add(f"        _x = _c{i}({v})")
        src.add(f"        if _x not in _r{i}:", "            raise _Slow")
        src.add(f"        {u} = {prefix!r} + _long(_x)")
    src.add(f"        if len({memo}) < _MEMO:", f"            {memo}[{v}] = {u}")
    src.add("else:", "    raise _Slow")


def compile_stored(parsed: dict[str, Any]) -> StoredEncoder:
    """The generated stored-form encoder of a flat record schema (Unsupported otherwise)."""
    source, namespace = stored_source(parsed)
    exec(compile(source, f"<stored encoder {parsed.get('name')}>", "exec"), namespace)
    encode: StoredEncoder = namespace["encode"]
    return encode
