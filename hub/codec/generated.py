"""Avro decoders generated per writer schema: Python source built from the parsed schema, compiled
once, reading the binary body straight out of a `bytes` object.

`fastavro.schemaless_reader` re-parses the schema and sets up a reader on every call; for the
small records of an event store that setup is most of its cost. A generated decoder has the
schema unrolled into straight-line code (fields in order, nullable unions as one `if`, non-
recursive nested records inlined) and costs a fraction of that per payload.

What it decodes, and how (identical to fastavro 1.13 for every valid body, proven by the
hypothesis tests in tests/unit/test_codec_generated.py):

- records (nested, and recursive ones through a generated function), null, boolean, int, long,
  float, double, bytes, string, fixed, enum, arrays and maps (block counts, negative counts with
  a block size), unions of up to 64 branches;
- logical types exactly as `fastavro.read.LOGICAL_READERS` gives them: timestamp-millis/micros
  (aware UTC datetimes), local-timestamp-millis/micros (naive), date, time-millis/micros,
  decimal on bytes and fixed (fastavro's own reader is called, so the context and rounding are
  its own), uuid; a logical type fastavro does not know leaves the base value as it is.

`raw=True` keeps the four timestamp logical types as integer microseconds since the epoch
(millis multiplied by 1000) instead of datetimes; with `nested=False` only the top-level
record's own fields are kept raw and everything inside nested records, arrays and maps decodes
as fastavro does.

What it does not do, and raises `Unsupported` for at generation time (callers then use
fastavro): schema resolution (a reader schema different from the writer's), unions of more than
64 branches, and protocol types (`error`, `request`, `error_union`) or any type string it does
not recognise.

At run time a generated decoder never guesses: a body it cannot read the canonical way (past the
end, a negative length, an enum or union index out of range, a varint longer than 10 bytes,
invalid UTF-8, ...) raises, and `hub.codec.Codec` answers that payload with fastavro, so errors
and edge cases are fastavro's own.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any

import fastavro.read

__all__ = ["BodyDecoder", "SchemaCode", "Unsupported", "compile_decoder", "decoder_source"]

BodyDecoder = Callable[[bytes, int], Any]
"""`decode(buf, pos)`: the value whose Avro binary encoding starts at `buf[pos]`."""

LOGICAL_READERS: dict[str, Any] = fastavro.read.LOGICAL_READERS  # the ones fastavro's reader uses
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_DAYS_SHIFT = dt.date(1970, 1, 1).toordinal()
_TIMESTAMPS = {
    "long-timestamp-micros": ("_EPOCH", 1),
    "long-timestamp-millis": ("_EPOCH", 1000),
    "long-local-timestamp-micros": ("_EPOCH_NAIVE", 1),
    "long-local-timestamp-millis": ("_EPOCH_NAIVE", 1000),
}
_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))
_MAX_UNION = 64  # a branch index below 64 is one zig-zag byte


class Unsupported(Exception):
    """The schema uses something the generator does not handle: decode it with fastavro."""


class BadBody(Exception):
    """The body is not the canonical encoding the generated code reads: ask fastavro."""


def _varint(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """The unsigned varint whose first byte `first` (>= 0x80) was read; (value, next pos).

    Unrolled: a loop costs a fifth more for the 8-byte varints of today's timestamps."""
    n = first & 0x7F
    c = buf[pos]
    n |= (c & 0x7F) << 7
    if c < 0x80:
        return n, pos + 1
    c = buf[pos + 1]
    n |= (c & 0x7F) << 14
    if c < 0x80:
        return n, pos + 2
    c = buf[pos + 2]
    n |= (c & 0x7F) << 21
    if c < 0x80:
        return n, pos + 3
    c = buf[pos + 3]
    n |= (c & 0x7F) << 28
    if c < 0x80:
        return n, pos + 4
    c = buf[pos + 4]
    n |= (c & 0x7F) << 35
    if c < 0x80:
        return n, pos + 5
    c = buf[pos + 5]
    n |= (c & 0x7F) << 42
    if c < 0x80:
        return n, pos + 6
    c = buf[pos + 6]
    n |= (c & 0x7F) << 49
    if c < 0x80:
        return n, pos + 7
    c = buf[pos + 7]
    n |= (c & 0x7F) << 56
    if c < 0x80:
        return n, pos + 8
    c = buf[pos + 8]
    n |= (c & 0x7F) << 63
    if c < 0x80 and not n >> 64:
        return n, pos + 9
    raise BadBody("varint longer than 10 bytes or beyond 64 bits")


def _span(buf: bytes, pos: int) -> tuple[int, int]:
    """Start and end of the bytes whose length is the varint at `pos` (the slow path of
    strings and bytes: a length of 64 or more, or a negative one, which is bad)."""
    n = buf[pos]
    pos += 1
    if n > 127:
        c = buf[pos]
        if c < 0x80:  # 64 to 8191 bytes
            n = (n & 0x7F) | (c << 7)
            pos += 1
        else:
            n, pos = _varint(buf, pos, n)
    if n & 1:
        raise BadBody("negative length")
    return pos, pos + (n >> 1)


_NAMESPACE: dict[str, Any] = {
    "_varint": _varint,
    "_span": _span,
    "_Bad": BadBody,
    "_EPOCH": _EPOCH,
    "_EPOCH_NAIVE": _EPOCH_NAIVE,
    "_TD": dt.timedelta,
    "_ordinal": dt.date.fromordinal,
    "_DAYS_SHIFT": _DAYS_SHIFT,
    "_float": struct.Struct("<f").unpack_from,
    "_double": struct.Struct("<d").unpack_from,
}


class SchemaCode:
    """What every code generator over a parsed schema needs: fresh local names, constants for
    the generated code's namespace, and named types resolved to their definitions."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.consts: dict[str, Any] = {}
        self.counter = 0
        self.stack: list[str] = []

    def tmp(self, prefix: str = "v") -> str:
        self.counter += 1
        return f"_{prefix}{self.counter}"

    def const(self, value: Any, prefix: str) -> str:
        name = self.tmp(prefix.upper())
        self.consts[name] = value
        return name

    def resolve(self, schema: Any) -> Any:
        """A named reference's definition; anything else unchanged."""
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            if schema not in self.named:
                raise Unsupported(f"unknown type {schema!r}")
            return self.named[schema]
        return schema


class _Generator(SchemaCode):
    """Emits the source of one decoder (and of the functions its recursive records need)."""

    def __init__(self, named: dict[str, Any], raw: bool, nested: bool) -> None:
        super().__init__(named)
        self.raw = raw
        self.nested = nested
        self.functions: dict[tuple[str, bool], str] = {}
        self.pending: list[tuple[str, bool, str]] = []
        self.uses: Counter[str] = Counter()

    def count_uses(self, schema: Any, seen: set[int]) -> None:
        """How often each named record is reached (definition or reference), to inline the
        records reached once and make a function of the others."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            for branch in schema:
                self.count_uses(branch, seen)
            return
        if not isinstance(schema, dict):
            return
        kind = schema.get("type")
        if kind == "record":
            self.uses[schema["name"]] += 1
            if id(schema) in seen:
                return
            seen.add(id(schema))
            for field in schema["fields"]:
                self.count_uses(field["type"], seen)
        elif kind == "array":
            self.count_uses(schema["items"], seen)
        elif kind == "map":
            self.count_uses(schema["values"], seen)

    # -- code -----------------------------------------------------------------------------------

    def read_long(self, out: list[str], ind: str, var: str) -> None:
        out.append(f"{ind}{var} = b[p]")
        out.append(f"{ind}p += 1")
        out.append(f"{ind}if {var} > 127:")
        out.append(f"{ind}    {var}, p = _varint(b, p, {var})")
        out.append(f"{ind}{var} = ({var} >> 1) ^ -({var} & 1)")

    def read_span(self, out: list[str], ind: str, var: str, decode: bool) -> None:
        """Read a length and that many bytes into `var` (as text when `decode`)."""
        end, start = self.tmp("e"), self.tmp("s")
        tail = ".decode()" if decode else ""
        out.append(f"{ind}{end} = b[p]")
        out.append(f"{ind}if {end} < 128 and not {end} & 1:")
        out.append(f"{ind}    {end} = p + 1 + ({end} >> 1)")
        out.append(f"{ind}    {var} = b[p + 1:{end}]{tail}")
        out.append(f"{ind}else:")
        out.append(f"{ind}    {start}, {end} = _span(b, p)")
        out.append(f"{ind}    {var} = b[{start}:{end}]{tail}")
        out.append(f"{ind}p = {end}")

    def emit(self, schema: Any, out: list[str], ind: str, var: str, level: int) -> None:
        """Lines reading one value of `schema` at b[p] into `var`, advancing p. `level` counts
        the records, arrays and maps around the value (0: the payload itself)."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            self.union(schema, out, ind, var, level)
            return
        if isinstance(schema, str):
            self.primitive(schema, out, ind, var)
            return
        if not isinstance(schema, dict) or not isinstance(schema.get("type"), str):
            raise Unsupported(f"unexpected schema {schema!r}")
        kind = schema["type"]
        if kind in _PRIMITIVES:
            self.primitive(kind, out, ind, var)
        elif kind == "fixed":
            size = int(schema["size"])
            out.append(f"{ind}{var} = b[p:p + {size}]")
            out.append(f"{ind}p += {size}")
        elif kind == "enum":
            symbols = self.const(tuple(schema["symbols"]), "sym")
            self.read_long(out, ind, var)
            out.append(f"{ind}if {var} < 0:")
            out.append(f"{ind}    raise _Bad")
            out.append(f"{ind}{var} = {symbols}[{var}]")
        elif kind == "array":
            self.array(schema, out, ind, var, level)
        elif kind == "map":
            self.map(schema, out, ind, var, level)
        elif kind == "record":
            self.record(schema, out, ind, var, level)
        else:
            raise Unsupported(f"type {kind!r}")
        logical = schema.get("logicalType")
        if logical:
            self.logical(f"{kind}-{logical}", schema, out, ind, var, level)

    def primitive(self, kind: str, out: list[str], ind: str, var: str) -> None:
        if kind == "null":
            out.append(f"{ind}{var} = None")
        elif kind == "boolean":
            out.append(f"{ind}{var} = b[p] != 0")
            out.append(f"{ind}p += 1")
        elif kind in ("int", "long"):
            self.read_long(out, ind, var)
        elif kind == "float":
            out.append(f"{ind}{var} = _float(b, p)[0]")
            out.append(f"{ind}p += 4")
        elif kind == "double":
            out.append(f"{ind}{var} = _double(b, p)[0]")
            out.append(f"{ind}p += 8")
        elif kind == "bytes":
            self.read_span(out, ind, var, decode=False)
        elif kind == "string":
            self.read_span(out, ind, var, decode=True)
        else:  # pragma: no cover (resolve() only passes primitives through)
            raise Unsupported(f"type {kind!r}")

    def logical(
        self, key: str, schema: Any, out: list[str], ind: str, var: str, level: int
    ) -> None:
        reader = LOGICAL_READERS.get(key)
        if reader is None:
            return
        if key in _TIMESTAMPS:
            epoch, factor = _TIMESTAMPS[key]
            scaled = var if factor == 1 else f"{var} * {factor}"
            if self.raw and (self.nested or level <= 1):
                if factor != 1:
                    out.append(f"{ind}{var} = {scaled}")
            else:
                out.append(f"{ind}{var} = {epoch} + _TD(0, 0, {scaled})")
        elif key == "int-date":
            out.append(f"{ind}{var} = _ordinal({var} + _DAYS_SHIFT)")
        else:
            fn = self.const(reader, "lr")
            arg = self.const(schema, "s")
            out.append(f"{ind}{var} = {fn}({var}, {arg})")

    def union(self, branches: list[Any], out: list[str], ind: str, var: str, level: int) -> None:
        if not branches or len(branches) > _MAX_UNION:
            raise Unsupported(f"union of {len(branches)} branches")
        index = self.tmp("u")
        out.append(f"{ind}{index} = b[p]")
        out.append(f"{ind}p += 1")
        for i, branch in enumerate(branches):
            out.append(f"{ind}{'if' if i == 0 else 'elif'} {index} == {2 * i}:")
            before = len(out)
            self.emit(branch, out, ind + "    ", var, level)
            if len(out) == before:  # pragma: no cover (every type emits at least one line)
                out.append(f"{ind}    pass")
        out.append(f"{ind}else:")
        out.append(f"{ind}    raise _Bad")

    def array(self, schema: Any, out: list[str], ind: str, var: str, level: int) -> None:
        count, item, loop = self.tmp("n"), self.tmp("i"), self.tmp("k")
        out.append(f"{ind}{var} = []")
        self.read_long(out, ind, count)
        out.append(f"{ind}while {count}:")
        inner = ind + "    "
        self.block_start(out, inner, count)
        out.append(f"{inner}for {loop} in range({count}):")
        self.emit(schema["items"], out, inner + "    ", item, level + 1)
        out.append(f"{inner}    {var}.append({item})")
        self.read_long(out, inner, count)

    def map(self, schema: Any, out: list[str], ind: str, var: str, level: int) -> None:
        count, key, value, loop = self.tmp("n"), self.tmp("k"), self.tmp("i"), self.tmp("j")
        out.append(f"{ind}{var} = {{}}")
        self.read_long(out, ind, count)
        out.append(f"{ind}while {count}:")
        inner = ind + "    "
        self.block_start(out, inner, count)
        out.append(f"{inner}for {loop} in range({count}):")
        self.primitive("string", out, inner + "    ", key)
        self.emit(schema["values"], out, inner + "    ", value, level + 1)
        out.append(f"{inner}    {var}[{key}] = {value}")
        self.read_long(out, inner, count)

    def block_start(self, out: list[str], ind: str, count: str) -> None:
        """A negative block count is followed by the block's size in bytes (unused)."""
        out.append(f"{ind}if {count} < 0:")
        out.append(f"{ind}    {count} = -{count}")
        size = self.tmp("z")
        self.read_long(out, ind + "    ", size)

    def record(self, schema: Any, out: list[str], ind: str, var: str, level: int) -> None:
        name = schema["name"]
        fields_raw = self.raw and (self.nested or level == 0)
        if self.uses[name] > 1 or name in self.stack:
            fn = self.function(name, schema, fields_raw, level)
            out.append(f"{ind}{var}, p = {fn}(b, p)")
            return
        self.stack.append(name)
        names = []
        for field in schema["fields"]:
            value = self.tmp()
            self.emit(field["type"], out, ind, value, level + 1)
            names.append(f"{field['name']!r}: {value}")
        self.stack.pop()
        out.append(f"{ind}{var} = {{{', '.join(names)}}}")

    def function(self, name: str, schema: Any, fields_raw: bool, level: int) -> str:
        """The function decoding record `name` (generated once per raw-ness of its fields)."""
        key = (name, fields_raw)
        fn = self.functions.get(key)
        if fn is not None:
            return fn
        fn = self.functions[key] = self.tmp("rec")
        body: list[str] = [f"def {fn}(b, p):"]
        # generated at the level its fields' raw-ness asks for: 0 keeps them raw, 1 does not
        saved, self.stack = self.stack, [name]
        names = []
        for field in schema["fields"]:
            value = self.tmp()
            self.emit(field["type"], body, "    ", value, 1 if fields_raw else 2)
            names.append(f"{field['name']!r}: {value}")
        self.stack = saved
        body.append(f"    return {{{', '.join(names)}}}, p")
        self.pending.append((name, fields_raw, "\n".join(body)))
        return fn


def decoder_source(
    parsed: Any, *, raw: bool = False, nested: bool = True
) -> tuple[str, dict[str, Any]]:
    """The Python source of `decode(b, p)` for a fastavro-parsed schema, and the constants its
    namespace needs; raises Unsupported (see the module docstring)."""
    named: dict[str, Any] = {}
    if isinstance(parsed, dict):
        named = dict(parsed.get("__named_schemas", {}))
    gen = _Generator(named, raw, nested)
    gen.count_uses(parsed, set())
    body: list[str] = ["def decode(b, p):"]
    gen.emit(parsed, body, "    ", "_v0", 0)
    body.append("    if p > len(b):")
    body.append("        raise _Bad")
    body.append("    return _v0")
    functions = [source for _, _, source in gen.pending]
    return "\n\n".join([*functions, "\n".join(body)]) + "\n", gen.consts


def compile_decoder(parsed: Any, *, raw: bool = False, nested: bool = True) -> BodyDecoder:
    """A compiled decoder for bodies written with the fastavro-parsed schema `parsed`:
    `decode(buf, pos)` reads the body starting at `buf[pos]` (`buf` must be `bytes`).

    Equal to `fastavro.schemaless_reader(BytesIO(buf[pos:]), parsed)` on every valid body;
    raises on a body it cannot read the canonical way (the caller then asks fastavro). With
    `raw`, timestamps stay integer microseconds (only in the top-level record's own fields
    when `nested` is False). Raises Unsupported when the schema needs fastavro.
    """
    source, consts = decoder_source(parsed, raw=raw, nested=nested)
    namespace = {**_NAMESPACE, **consts}
    code = compile(source, f"<avro decoder {_name_of(parsed)}>", "exec")
    exec(code, namespace)
    decode: BodyDecoder = namespace["decode"]
    return decode


def _name_of(parsed: Any) -> str:
    if isinstance(parsed, dict):
        return str(parsed.get("name", parsed.get("type")))
    return str(parsed)
