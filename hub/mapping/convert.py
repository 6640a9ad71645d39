"""Type-conversion and arithmetic steps: str, int, float, decimal, bool, date, datetime, div,
mul, round.

Each step is `fn(value, args, ctx) -> value`; `args` were checked and prepared at load time.
A step is never called with None (the pipeline passes None through) and signals a value it
cannot handle by raising StepFailure.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hub.mapping.runtime import Context, StepFailure, as_text, show

Args = tuple[Any, ...]

DECIMALS = decimal.Context(prec=34, rounding=ROUND_HALF_UP, Emax=999_999, Emin=-999_999)
"""Arithmetic on Decimals (money): 34 significant digits, halves round up."""

_MAX_EXPONENT = 60  # a number beyond 10**60 is a data error, not an amount
_PLAIN = decimal.Context(prec=_MAX_EXPONENT + 2, rounding=ROUND_HALF_UP)
_MAX_EPOCH_SECONDS = 253_402_300_800  # 10000-01-01: larger numbers are not epoch seconds
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


def to_str(value: Any, args: Args, ctx: Context) -> str:
    """Text form of a scalar (bools as true/false, dates ISO)."""
    return as_text(value)


def to_int(value: Any, args: Args, ctx: Context) -> int:
    """An integer from an int, a whole float/Decimal, or text like '42' or '42.0'."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(_bounded(value, value))
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = _parse_decimal(text)
            if number is not None and number == number.to_integral_value():
                return int(_bounded(number, value))
    if isinstance(value, float | Decimal):
        hint = "round it first ('round 0 | int')"
    elif isinstance(value, str) and _parse_decimal(value.strip()) is not None:
        hint = "it has a fraction: round it first ('decimal | round 0 | int')"
    elif isinstance(value, str) and value and not value.strip():
        hint = "it is only spaces: add 'strip | default 0' before 'int' to read it as 0"
    else:
        hint = "fix the value at the source or add 'default 0' for empty values"
    raise StepFailure(f"cannot convert {show(value)} to an integer: {hint}")


def to_float(value: Any, args: Args, ctx: Context) -> float:
    """A finite float from a number or numeric text."""
    result: float | None = None
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        try:
            result = float(value)
        except (OverflowError, ValueError):  # huge ints, signaling NaN
            result = None
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            result = None
    if result is None or not math.isfinite(result):
        raise StepFailure(
            f"cannot convert {show(value)} to a finite number: fix the value at the source"
        )
    return result


def to_decimal(value: Any, args: Args, ctx: Context) -> Decimal:
    """An exact Decimal from a number or numeric text; quantized when args[0] (places) is set."""
    number: Decimal | None = None
    if isinstance(value, Decimal):
        number = value if value.is_finite() else None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value)) if math.isfinite(value) else None
    elif isinstance(value, str):
        number = _parse_decimal(value.strip())
    if number is None:
        raise StepFailure(
            f"cannot convert {show(value)} to a decimal number: write it like 12.50 "
            "(a '.' for the decimal point, no thousands separators)"
        )
    if number and number.adjusted() > _MAX_EXPONENT:
        raise StepFailure(
            f"{show(value)} is too large to be an amount (more than {_MAX_EXPONENT} digits): "
            "fix the value at the source"
        )
    return _quantize(number, args[0], value) if args else _plain(number, value)


def to_bool(value: Any, args: Args, ctx: Context) -> bool:
    """True/false from a bool, an int (non-zero is true) or a yes/no word."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise StepFailure(
        f"cannot read {show(value)} as true/false: use true/false, yes/no, y/n, 1/0 or on/off, "
        "or translate other words with 'map'"
    )


def to_date(value: Any, args: Args, ctx: Context) -> dt.date:
    """A date from a date, a datetime (its own calendar day) or text (ISO, or args[0] format)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if args:
                return dt.datetime.strptime(text, args[0]).date()
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                return dt.datetime.fromisoformat(text).date()
        except ValueError:
            pass
    expected = f"format {args[0]!r}" if args else "ISO form YYYY-MM-DD"
    raise StepFailure(
        f"cannot read {show(value)} as a date in {expected}: fix the value, or give its "
        "format (e.g. 'date %d.%m.%Y')"
    )


def to_datetime(value: Any, args: Args, ctx: Context) -> dt.datetime:
    """An aware UTC datetime from a datetime (naive = UTC), a date, epoch seconds or text."""
    try:
        if isinstance(value, dt.datetime):
            return _utc(value)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        if isinstance(value, str):
            text = value.strip()
            if args:
                return _utc(dt.datetime.strptime(text, args[0]))
            return _utc(dt.datetime.fromisoformat(text))
    except (ValueError, OverflowError, OSError):
        pass
    expected = f"format {args[0]!r}" if args else "ISO 8601 form (2024-03-01T09:30:00Z)"
    hint = "fix the value, or give its format (e.g. 'datetime %d.%m.%Y %H:%M')"
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        hint = (
            "if it is epoch milliseconds, add 'div 1000' before 'datetime'"
            if _finite_decimal(value) and abs(Decimal(value)) >= _MAX_EPOCH_SECONDS
            else "fix the value at the source"
        )
    elif isinstance(value, str) and value.strip().isdigit():
        hint = "for epoch seconds written as text, use 'int | datetime'"
    raise StepFailure(
        f"cannot read {show(value)} as a timestamp in {expected} or as epoch seconds: {hint}"
    )


def div(value: Any, args: Args, ctx: Context) -> Any:
    """value / N; Decimal stays Decimal, other numbers give a float."""
    number = _number(value, "div")
    try:
        if isinstance(number, Decimal):
            return _plain(DECIMALS.divide(number, args[1]), value)
        return _finite(number / args[0], value)
    except (ArithmeticError, decimal.DecimalException):  # N == 0 is refused at load time
        raise StepFailure(f"cannot divide {show(value)} by {args[0]}: out of range") from None


def mul(value: Any, args: Args, ctx: Context) -> Any:
    """value * N; Decimal stays Decimal, int * int stays int."""
    number = _number(value, "mul")
    try:
        if isinstance(number, Decimal):
            return _plain(DECIMALS.multiply(number, args[1]), value)
        return _finite(number * args[0], value)
    except (ArithmeticError, decimal.DecimalException):
        raise StepFailure(f"cannot multiply {show(value)} by {args[0]}: out of range") from None


def round_(value: Any, args: Args, ctx: Context) -> Any:
    """value rounded to N places, halves away from zero whatever the type (as `decimal`).

    A float is rounded as the decimal it prints as (`2.675` → `2.68`, `0.15` → `0.2`), not as
    its binary value with Python's half-to-even `round` (which gave `2.67` and `0.1`); an int
    stays an int (`round -2`: `1250` → `1300`)."""
    number = _number(value, "round")
    places: int = args[0]
    if isinstance(number, Decimal):
        return _quantize(number, places, value)
    if isinstance(number, float):
        exact = Decimal(repr(number))
        exponent = exact.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= -places:
            return number or 0.0  # nothing to round (and no negative zero)
        return _finite(float(_quantize(exact, places, value)) or 0.0, value)
    if places >= 0:
        return number
    unit = 10**-places
    whole, rest = divmod(abs(number), unit)
    if 2 * rest >= unit:
        whole += 1
    return whole * unit if number >= 0 else -whole * unit


def _number(value: Any, step: str) -> int | float | Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise StepFailure(
            f"needs a number, got {show(value)}: add 'int', 'float' or 'decimal' before '{step}'"
        )
    if (isinstance(value, float) and not math.isfinite(value)) or (
        isinstance(value, Decimal) and not value.is_finite()
    ):
        raise StepFailure(f"needs a finite number, got {show(value)}: fix the value at the source")
    return value


def _finite(result: Any, value: Any) -> Any:
    if isinstance(result, float) and not math.isfinite(result):
        raise StepFailure(
            f"the result for {show(value)} is out of range: fix the value at the source, "
            "or use 'decimal' before this step"
        )
    return result


def _finite_decimal(value: int | float | Decimal) -> bool:
    return Decimal(value).is_finite() if not isinstance(value, int) else True


def _parse_decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text)
    except decimal.InvalidOperation:
        return None
    return number if number.is_finite() else None


def _bounded(number: Decimal, value: Any) -> Decimal:
    if number and number.adjusted() > _MAX_EXPONENT:
        raise StepFailure(f"{show(value)} is too large to be a meaningful integer")
    return number


def _quantize(number: Decimal, places: int, value: Any) -> Decimal:
    try:
        rounded = number.quantize(Decimal(1).scaleb(-places), context=DECIMALS)
    except decimal.DecimalException:
        raise StepFailure(
            f"cannot round {show(value)} to {places} places: it has too many digits"
        ) from None
    return _plain(rounded, value)


def _plain(number: Decimal, value: Any) -> Decimal:
    """`number` as an amount is written: never in exponent form (`2E+1` → `20`, since the
    canonical state stores str() of it) and never a negative zero (`-0.00` → `0.00`)."""
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        if number and number.adjusted() > _MAX_EXPONENT:
            raise StepFailure(f"the result for {show(value)} is out of range")
        number = number.quantize(Decimal(1), context=_PLAIN)
    return number.copy_abs() if number.is_zero() else number


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)
