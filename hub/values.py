"""The one canonical JSON/stored form of values, shared by the projections and the hub.

- `to_json`: a value as stored and compared (Decimal → plain text, date/datetime → ISO text,
  tuples → lists); mapped canonical fields and desired target states take this form.
- `dumps`: the deterministic JSON text of a stored value (sorted keys, no spaces), the form of
  every JSON column and of what idempotency keys hash.
- `micros`: a time as stored, integer microseconds since the epoch.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from typing import Any

import orjson

__all__ = ["dumps", "micros", "to_json"]

_PLAIN = frozenset((str, int, bool, float, type(None)))


def to_json(value: Any) -> Any:
    """Canonical values as stored: Decimal → plain text (no exponent), date/datetime → ISO text,
    tuples → lists."""
    if type(value) in _PLAIN:
        return value
    if type(value) is dict:
        return {k: v if type(v) in _PLAIN else to_json(v) for k, v in value.items()}
    if isinstance(value, decimal.Decimal):
        return format(value, "f")  # an amount as written: 100, not 1E+2
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
_SMALLEST = 1e-4
"""orjson writes a float as Python's repr does, except below this magnitude (0.00001, not
1e-05) and non-finite ones (null, not NaN)."""


def dumps(value: Any) -> str:
    """Deterministic JSON for stored values (sorted keys, no spaces, non-ASCII kept, other
    types as their str()).

    orjson writes it (3-4x faster than the stdlib encoder for a canonical entity, measured)
    whenever its text is the stdlib's byte for byte: it refuses (and the stdlib's `json`
    encoder writes) what it would write otherwise, i.e. integers past 64 bits, non-text dict
    keys, subclasses and other types (written as their str()); floats it would write
    differently (tiny or non-finite ones) are looked for first. So the text of a value never
    depends on which encoder wrote it (idempotency keys hash it).
    """
    if _floats_agree(value):
        try:
            return orjson.dumps(value, option=_ORJSON).decode()
        except TypeError:
            pass
    return _ENCODER.encode(value)


_NESTED = frozenset((float, dict, list, tuple))


def _floats_agree(value: Any) -> bool:
    """Whether every float in `value` is one orjson writes as the stdlib does."""
    t = type(value)
    if t is dict:
        values: Any = value.values()
        if _NESTED.isdisjoint(map(type, values)):  # the common case, checked at C speed
            return True
    elif t is list or t is tuple:
        values = value
    elif t is float:
        return bool(value == 0.0 or _SMALLEST <= abs(value) < math.inf)
    else:
        return True
    for v in values:
        t = type(v)
        if t is float:
            if not (v == 0.0 or _SMALLEST <= abs(v) < math.inf):
                return False
        elif (t is dict or t is list or t is tuple) and not _floats_agree(v):
            return False
    return True


def micros(value: Any) -> int | None:
    """A time as stored: integer microseconds since the epoch (a datetime is converted, an
    integer kept, None stays None)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1_000_000)
    return int(value)


def span(seconds: float) -> str:
    """A duration the way people say it: 45s, 12m, 3h 20m, 2d 4h (negative: -2h 0m)."""
    s = abs(int(seconds))
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m"
    elif s < 86400:
        text = f"{s // 3600}h {s % 3600 // 60}m"
    else:
        text = f"{s // 86400}d {s % 86400 // 3600}h"
    return text if seconds >= 0 else f"-{text}"
