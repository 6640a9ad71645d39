"""Avro body encoders generated per record schema: the fast path of `fastavro.schemaless_writer`.

`fastavro.schemaless_writer` walks the parsed schema on every call; for the small records a
connector captures, that walk is most of the cost of ingesting a change (≈ 5 µs of ≈ 15 µs per
change, measured with `bench/ingest.py --profile`). A generated encoder has the schema unrolled
into straight-line Python (fields in order, nullable unions as one `if`, nested records inlined)
and writes the same bytes in a fraction of the time.

It takes only the plain form of each value and hands anything else back: a value of another
Python type than the one the schema names (an int for a double, a tuple for an array, a naive
datetime), a missing field, an int out of range, text that is not valid Unicode, raise `Slow`
(or the TypeError, KeyError... the fast path hits), and `AvroBodyEncoder` then asks fastavro,
so every error message and every lenient conversion is fastavro's own. On the values it takes,
its bytes equal fastavro 1.13's (proven by the hypothesis tests in
tests/unit/test_codec_encoder.py).

What it generates code for: null, boolean, int, long, float, double, bytes, string, enum, fixed,
records (not recursive ones), arrays, maps, unions of null and one other type, the timestamp,
date and time logical types given as ints (timestamps also as aware datetimes), and decimals on
bytes given as finite `Decimal`s (the canonical amounts and rates: the published state records
of most entities have one). Anything else (other unions, decimal on fixed, uuid,
recursive records) raises Unsupported at generation time, and the whole record is written by
fastavro.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import struct
from collections.abc import Callable, Mapping
from typing import Any

import fastavro

from hub.codec.generated import SchemaCode, Unsupported

__all__ = [
    "AvroBodyEncoder",
    "Slow",
    "Unsupported",
    "avro_long",
    "compile_encoder",
    "encoder_source",
]

BodyEncoder = Callable[[Mapping[str, Any]], bytes]

_BYTE = [bytes([b]) for b in range(128)]
_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))
_INT_LOGICAL = frozenset(("date", "time-millis"))
_LONG_LOGICAL = frozenset(
    (
        "time-micros",
        "timestamp-millis",
        "timestamp-micros",
        "local-timestamp-millis",
        "local-timestamp-micros",
    )
)
_AWARE = {"timestamp-micros": "", "timestamp-millis": " // 1000"}
"""Timestamp logical types whose aware datetimes the fast path converts (a naive one means
local time to fastavro: it takes that itself)."""
_KNOWN_LOGICAL = _INT_LOGICAL | _LONG_LOGICAL | {"decimal", "uuid"}
_EXACT = decimal.Context(prec=decimal.MAX_PREC, traps=[decimal.Inexact])
"""Scales a Decimal by a power of ten without rounding (its digits are kept as they are)."""


class Slow(Exception):
    """The generated encoder does not take this value the plain way: fastavro writes it."""


_SLOW = (
    Slow, LookupError, TypeError, ValueError, OverflowError, AttributeError, struct.error,
    decimal.DecimalException,  # a decimal too large to scale exactly: fastavro's own way
)  # fmt: skip
"""What the fast path may raise on a value it does not take."""


def avro_long(n: int) -> bytes:
    """Avro long: zig-zag, then base-128 varint (7-bit groups, low first, high bit = "more")."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return _BYTE[z]
    k = (z.bit_length() + 6) // 7
    if k > 8:
        return _long_loop(z)
    # Spread the 8 groups of 7 bits to one group per byte (halving: 28, 14, 7 bits apart), set
    # every continuation bit, clear the last byte's, and keep the k bytes.
    x = (z & 0xFFFFFFF) | ((z & 0xFFFFFFF0000000) << 4)
    x = (x & 0x00003FFF00003FFF) | ((x & 0x0FFFC0000FFFC000) << 2)
    x = (x & 0x007F007F007F007F) | ((x & 0x3F803F803F803F80) << 1)
    return ((x | 0x8080808080808080) & ((1 << (8 * k - 1)) - 1)).to_bytes(k, "little")


def _long_loop(z: int) -> bytes:
    """Varint of a zig-zagged long, a byte at a time."""
    out = bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_NAMESPACE: dict[str, Any] = {
    "_B": _BYTE,
    "_long": avro_long,
    "_Slow": Slow,
    "_float": struct.Struct("<f").pack,
    "_double": struct.Struct("<d").pack,
    "_datetime": dt.datetime,
    "_EPOCH": dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    "_US": dt.timedelta(microseconds=1),
    "_Decimal": decimal.Decimal,
    "_EXACT": _EXACT,
}


class _Generator(SchemaCode):
    """Emits one encoder: statements that check each value and name its pieces, and the
    expressions of the pieces, joined once at the end (cheaper than appending to a list)."""

    def emit(self, schema: Any, out: list[str], ind: str, var: str) -> list[str]:
        """Lines (to `out`) checking `var`, a value of `schema`; the expressions of its bytes."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            return self.union(schema, out, ind, var)
        if isinstance(schema, str):
            return self.primitive(schema, out, ind, var)
        if not isinstance(schema, dict) or not isinstance(schema.get("type"), str):
            raise Unsupported(f"unexpected schema {schema!r}")
        kind = schema["type"]
        logical = schema.get("logicalType")
        if kind == "bytes" and logical == "decimal":
            return self.decimal(schema, out, ind, var)
        if logical in _KNOWN_LOGICAL:
            return self.logical(kind, logical, out, ind, var)
        if kind in _PRIMITIVES:
            return self.primitive(kind, out, ind, var)
        if kind == "fixed":
            self.check(out, ind, f"type({var}) is not bytes or len({var}) != {int(schema['size'])}")
            return [var]
        if kind == "enum":
            index = {s: avro_long(i) for i, s in enumerate(schema["symbols"])}
            self.check(out, ind, f"type({var}) is not str")
            return [f"{self.const(index, 'sym')}[{var}]"]
        if kind == "array":
            item = self.tmp("i")
            return self.repeated(
                schema["items"], out, ind, var, "list", f"for {item} in {var}:", [(None, item)]
            )
        if kind == "map":
            key, item = self.tmp("k"), self.tmp("i")
            return self.repeated(
                schema["values"],
                out,
                ind,
                var,
                "dict",
                f"for {key}, {item} in {var}.items():",
                [("string", key), (None, item)],
            )
        if kind == "record":
            return self.record(schema, out, ind, var)
        raise Unsupported(f"type {kind!r}")

    @staticmethod
    def check(out: list[str], ind: str, wrong: str) -> None:
        out.append(f"{ind}if {wrong}:")
        out.append(f"{ind}    raise _Slow")

    def primitive(self, kind: str, out: list[str], ind: str, var: str) -> list[str]:
        if kind == "null":
            self.check(out, ind, f"{var} is not None")
            return []
        if kind == "boolean":
            self.check(out, ind, f"type({var}) is not bool")
            return [f"(b'\\x01' if {var} else b'\\x00')"]
        if kind in ("int", "long"):
            bits = 31 if kind == "int" else 63
            self.check(out, ind, f"type({var}) is not int or not {-(2**bits)} <= {var} < {2**bits}")
            return [f"(_B[({var} << 1) ^ ({var} >> 63)] if -64 <= {var} < 64 else _long({var}))"]
        if kind in ("float", "double"):
            self.check(out, ind, f"type({var}) is not float")
            return [f"_{kind}({var})"]
        if kind in ("bytes", "string"):
            self.check(out, ind, f"type({var}) is not {'bytes' if kind == 'bytes' else 'str'}")
            data = var
            if kind == "string":
                data = self.tmp("s")
                out.append(f"{ind}{data} = {var}.encode()")
            n = self.tmp("n")
            out.append(f"{ind}{n} = len({data})")
            return [f"(_B[{n} << 1] if {n} < 64 else _long({n}))", data]
        raise Unsupported(f"type {kind!r}")  # pragma: no cover (resolve() passes primitives)

    def logical(self, kind: str, logical: str, out: list[str], ind: str, var: str) -> list[str]:
        """A logical type fastavro converts: only its base form (an int) is plain, an aware
        datetime for the UTC timestamps (decimals on bytes: `decimal`)."""
        if not (
            (kind == "int" and logical in _INT_LOGICAL)
            or (kind == "long" and logical in _LONG_LOGICAL)
        ):
            raise Unsupported(f"logical type {logical!r} on {kind!r}")
        if logical in _AWARE:
            out.append(f"{ind}if type({var}) is _datetime and {var}.tzinfo is not None:")
            out.append(f"{ind}    {var} = ({var} - _EPOCH) // _US{_AWARE[logical]}")
        return self.primitive(kind, out, ind, var)

    def decimal(self, schema: dict[str, Any], out: list[str], ind: str, var: str) -> list[str]:
        """fastavro's `prepare_bytes_decimal`: the unscaled integer, big-endian two's
        complement in (|n|.bit_length() + 8) // 8 bytes; a Decimal of more digits than the
        precision, of a finer exponent than the scale, or not finite goes to fastavro."""
        scale, precision = int(schema.get("scale", 0)), int(schema["precision"])
        t, n, size = self.tmp("t"), self.tmp("n"), self.tmp("z")
        self.check(out, ind, f"type({var}) is not _Decimal or not {var}.is_finite()")
        out.append(f"{ind}{t} = {var}.as_tuple()")
        self.check(out, ind, f"len({t}[1]) > {precision} or {t}[2] + {scale} < 0")
        out.append(f"{ind}{n} = int({var}.scaleb({scale}, _EXACT))")
        out.append(f"{ind}{size} = (abs({n}).bit_length() + 8) // 8")
        data = self.tmp("d")
        out.append(f"{ind}{data} = {n}.to_bytes({size}, 'big', signed=True)")
        return [f"(_B[{size} << 1] if {size} < 64 else _long({size}))", data]

    def union(self, branches: list[Any], out: list[str], ind: str, var: str) -> list[str]:
        others = [i for i, b in enumerate(branches) if self.resolve(b) != "null"]
        if len(branches) != 2 or len(others) != 1:
            raise Unsupported("a union other than null and one type")
        other = others[0]
        if isinstance(self.resolve(branches[other]), list):
            raise Unsupported("a union inside a union")
        joined = self.tmp("u")
        out.append(f"{ind}if {var} is None:")
        out.append(f"{ind}    {joined} = {_BYTE[(1 - other) << 1]!r}")
        out.append(f"{ind}else:")
        parts = self.emit(branches[other], out, ind + "    ", var)
        out.append(f"{ind}    {joined} = b''.join(({_BYTE[other << 1]!r}, {', '.join(parts)}))")
        return [joined]

    def repeated(
        self,
        schema: Any,
        out: list[str],
        ind: str,
        var: str,
        python: str,
        loop: str,
        items: list[tuple[str | None, str]],
    ) -> list[str]:
        """An array or a map: blocks of `len(var)` items, then an empty block."""
        pieces, joined = self.tmp("l"), self.tmp("r")
        self.check(out, ind, f"type({var}) is not {python}")
        out.append(f"{ind}if {var}:")
        out.append(f"{ind}    {pieces} = [_long(len({var}))]")
        out.append(f"{ind}    {loop}")
        parts: list[str] = []
        for kind, item in items:
            parts += self.emit(kind or schema, out, ind + "        ", item)
        if parts:
            out.append(f"{ind}        {pieces}.extend(({', '.join(parts)},))")
        out.append(f"{ind}    {pieces}.append(b'\\x00')")
        out.append(f"{ind}    {joined} = b''.join({pieces})")
        out.append(f"{ind}else:")
        out.append(f"{ind}    {joined} = b'\\x00'")
        return [joined]

    def record(self, schema: dict[str, Any], out: list[str], ind: str, var: str) -> list[str]:
        name = schema["name"]
        if name in self.stack:
            raise Unsupported(f"recursive record {name!r}")
        self.stack.append(name)
        self.check(out, ind, f"type({var}) is not dict")
        parts: list[str] = []
        for field in schema["fields"]:
            value = self.tmp()
            out.append(f"{ind}{value} = {var}[{field['name']!r}]")
            parts += self.emit(field["type"], out, ind, value)
        self.stack.pop()
        return parts


def encoder_source(parsed: Any) -> tuple[str, dict[str, Any]]:
    """The Python source of `encode(record) -> bytes` for a fastavro-parsed record schema, and
    the constants its namespace needs; raises Unsupported (see the module docstring)."""
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise Unsupported("not a record schema")
    gen = _Generator(dict(parsed.get("__named_schemas", {})))
    body = ["def encode(r):"]
    parts = gen.emit(parsed, body, "    ", "r")
    body.append(f"    return b''.join(({''.join(p + ', ' for p in parts)}))")
    return "\n".join(body) + "\n", gen.consts


def compile_encoder(parsed: Any) -> BodyEncoder:
    """The generated encoder of the fastavro-parsed record schema `parsed`: equal to
    `fastavro.schemaless_writer` on the values it takes, raising one of `_SLOW` on any other.
    Raises Unsupported when the schema needs fastavro."""
    source, consts = encoder_source(parsed)
    namespace = {**_NAMESPACE, **consts}
    exec(compile(source, f"<avro encoder {parsed.get('name')}>", "exec"), namespace)
    encode: BodyEncoder = namespace["encode"]
    return encode


class AvroBodyEncoder:
    """Writes records of one schema as Avro binary bodies: the generated encoder when it takes
    the record, else fastavro (whose exceptions then propagate unchanged)."""

    def __init__(self, parsed: Any) -> None:
        self.parsed = parsed
        try:
            self.fast: BodyEncoder | None = compile_encoder(parsed)
        except Unsupported:
            self.fast = None
        self._buf = io.BytesIO()

    def __call__(self, record: Mapping[str, Any]) -> bytes:
        if self.fast is not None:
            try:
                return self.fast(record)
            except _SLOW:
                pass
        buf = self._buf
        buf.seek(0)
        buf.truncate()
        fastavro.schemaless_writer(buf, self.parsed, record)
        return buf.getvalue()
