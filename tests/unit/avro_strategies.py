"""Hypothesis strategies for Avro: random schemas (nested records, unions, arrays, maps, enums,
fixed, logical types), records valid for them in the forms fastavro's writer takes, and `exact`,
a form of a value that is equal only for identical values. Shared by the codec tests."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import struct
from typing import Any

from hypothesis import strategies as st

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EPOCH_NAIVE = dt.datetime(1970, 1, 1)
MAX_MICROS = (dt.datetime(9999, 12, 31, 23, 59, 59, 999999) - EPOCH_NAIVE) // dt.timedelta(
    microseconds=1
)
MIN_MICROS = (dt.datetime(1, 1, 1) - EPOCH_NAIVE) // dt.timedelta(microseconds=1)


# -- comparing values exactly ------------------------------------------------------------------


def exact(value: Any) -> Any:
    """A form of `value` that is equal only for identical values: types kept, floats as bits,
    dict order kept."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, dict):
        return ("dict", [(exact(k), exact(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [exact(v) for v in value])
    if isinstance(value, decimal.Decimal):
        return ("Decimal", value.as_tuple())
    if isinstance(value, dt.datetime):
        return ("datetime", value.isoformat(), repr(value.tzinfo))
    return (type(value).__name__, repr(value))


# -- random schemas and records ------------------------------------------------------------------

PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
LOGICAL: list[dict[str, Any]] = [
    {"type": "long", "logicalType": "timestamp-micros"},
    {"type": "long", "logicalType": "timestamp-millis"},
    {"type": "long", "logicalType": "local-timestamp-micros"},
    {"type": "long", "logicalType": "local-timestamp-millis"},
    {"type": "int", "logicalType": "date"},
    {"type": "int", "logicalType": "time-millis"},
    {"type": "long", "logicalType": "time-micros"},
    {"type": "string", "logicalType": "uuid"},
    {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 4},
    {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 0},
    {"type": "string", "logicalType": "unknown-to-fastavro"},
]


class Names:
    def __init__(self) -> None:
        self.counter = itertools.count()

    def __call__(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"


@st.composite
def schemas(draw: Any, names: Names | None = None, depth: int = 0) -> Any:
    """A random Avro schema (JSON form); named types get unique names."""
    names = names or Names()
    leaf = depth >= 3
    kinds = ["primitive", "logical", "enum", "fixed", "fixed_decimal"]
    if not leaf:
        kinds += ["record", "record", "array", "map", "union", "nullable"]
    kind = draw(st.sampled_from(kinds))
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES))
    if kind == "logical":
        return dict(draw(st.sampled_from(LOGICAL)))
    if kind == "enum":
        count = draw(st.integers(1, 5))
        return {"type": "enum", "name": names("E"), "symbols": [f"S{i}" for i in range(count)]}
    if kind == "fixed":
        return {"type": "fixed", "name": names("F"), "size": draw(st.integers(0, 12))}
    if kind == "fixed_decimal":
        return {
            "type": "fixed",
            "name": names("D"),
            "size": 8,
            "logicalType": "decimal",
            "precision": 18,
            "scale": draw(st.integers(0, 6)),
        }
    if kind == "array":
        return {"type": "array", "items": draw(schemas(names, depth + 1))}
    if kind == "map":
        return {"type": "map", "values": draw(schemas(names, depth + 1))}
    if kind == "nullable":
        inner = draw(schemas(names, depth + 1).filter(lambda s: not _is_union_or_null(s)))
        return ["null", inner] if draw(st.booleans()) else [inner, "null"]
    if kind == "union":
        # at most one of each unnamed type (Avro's rule), any number of named ones
        branches = draw(st.lists(st.sampled_from(PRIMITIVES), min_size=1, max_size=4, unique=True))
        named = draw(
            st.lists(
                schemas(names, depth + 1).filter(_is_named),
                max_size=2,
            )
        )
        return branches + named
    fields = draw(st.lists(schemas(names, depth + 1), min_size=0, max_size=5))
    return {
        "type": "record",
        "name": names("R"),
        "fields": [{"name": f"f{i}", "type": t} for i, t in enumerate(fields)],
    }


def _is_union_or_null(schema: Any) -> bool:
    return isinstance(schema, list) or schema == "null"


def _is_named(schema: Any) -> bool:
    """A named type for a union's branch; not a decimal: fastavro's writer fails (instead of
    trying the next branch) on a Decimal of another scale than the first decimal branch's."""
    return (
        isinstance(schema, dict)
        and schema.get("type") in ("record", "enum", "fixed")
        and "logicalType" not in schema
    )


def values(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Records valid for `schema` (in the forms fastavro's writer takes)."""
    if isinstance(schema, list):
        return st.one_of([values(branch, named) for branch in schema])
    if isinstance(schema, str):
        if schema in named:
            return st.deferred(lambda: values(named[schema], named))
        return _primitive(schema)
    kind, logical = schema["type"], schema.get("logicalType")
    if kind == "record":
        named[schema["name"]] = schema
        return st.fixed_dictionaries(
            {f["name"]: values(f["type"], named) for f in schema["fields"]}
        )
    if kind in ("enum", "fixed"):
        named[schema["name"]] = schema
    if logical == "decimal":
        scale, precision = schema.get("scale", 0), schema["precision"]
        bound = 10**precision - 1
        return st.integers(-bound, bound).map(lambda n: decimal.Decimal(n).scaleb(-scale))
    if logical in ("timestamp-micros", "local-timestamp-micros"):
        aware = logical == "timestamp-micros"
        return st.one_of(
            st.datetimes(timezones=st.just(dt.UTC) if aware else st.none()),
            st.integers(MIN_MICROS, MAX_MICROS),
            st.integers(-(2**63), 2**63 - 1),  # beyond datetime: fastavro raises
        )
    if logical in ("timestamp-millis", "local-timestamp-millis"):
        aware = logical == "timestamp-millis"
        return st.one_of(
            st.datetimes(timezones=st.just(dt.UTC) if aware else st.none()).map(
                lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
            ),
            st.integers(MIN_MICROS // 1000, MAX_MICROS // 1000),
        )
    if logical == "date":
        return st.one_of(st.dates(), st.integers(-719_162, 2_932_896))
    if logical == "time-millis":
        return st.times().map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
    if logical == "time-micros":
        return st.times()
    if logical == "uuid":
        return st.uuids()
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "array":
        return st.lists(values(schema["items"], named), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), values(schema["values"], named), max_size=3)
    return _primitive(kind)


def _primitive(kind: str) -> st.SearchStrategy[Any]:
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32),
        "double": st.floats(),
        "bytes": st.binary(max_size=150),
        "string": st.text(max_size=150),
    }[kind]
