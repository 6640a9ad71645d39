"""hub.values.dumps: orjson when its text is the stdlib encoder's, byte for byte."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.values import dumps

_STDLIB = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(_values)
def test_dumps_writes_exactly_what_the_stdlib_encoder_writes(value: Any) -> None:
    assert dumps(value) == _STDLIB.encode(value)


def test_the_cases_where_orjson_would_differ_take_the_stdlib_path() -> None:
    cases = [
        {"tiny": 1e-05, "text": "x"},
        [float("nan"), float("inf")],
        {"big": 2**70},
        {"when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
        {"amount": decimal.Decimal("1.50")},
        {1: "int key"},
    ]
    for value in cases:
        assert dumps(value) == _STDLIB.encode(value)
