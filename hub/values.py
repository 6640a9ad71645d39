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
from typing import Any

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


def dumps(value: Any) -> str:
    """Deterministic JSON for stored values (sorted keys, no spaces). One shared encoder:
    `json.dumps` with options builds a new one per call, a third of the cost."""
    return _ENCODER.encode(value)


def micros(value: Any) -> int | None:
    """A time as stored: integer microseconds since the epoch (a datetime is converted, an
    integer kept, None stays None)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1_000_000)
    return int(value)
