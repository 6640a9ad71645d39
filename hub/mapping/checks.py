"""Steps for validation rules (`require` on targets) and for reading other canonical entities.

They turn values into booleans (`equals`, `gt`, `not_future`, `is_set`, `not`) or look at the
canonical state through the Lookup (`exists`, `field_of`), so a target rule can say "the task
exists and is open, the duration is positive, the date is not in the future".
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

from hub.mapping.convert import to_decimal
from hub.mapping.runtime import Context, StepFailure, as_text, path_steps, show, walk

Args = tuple[Any, ...]
_SLUG = re.compile(r"[^a-z0-9/]+")


def _nan(value: Any) -> bool:
    return (isinstance(value, Decimal) and value.is_nan()) or (
        isinstance(value, float) and math.isnan(value)
    )


def equals(value: Any, args: Args, ctx: Context) -> bool:
    """Whether the value equals args[0], or their text forms do (`1` equals `"1"`); texts are
    compared case-sensitively, a bool only equals a bool or its text (`true` is not `1`), lists
    and objects compare as a whole, NaN equals nothing. Handles None."""
    expected = args[0]
    if _nan(value):
        return False
    if value is None or expected is None:
        return value is expected
    if isinstance(value, list | dict) or isinstance(expected, list | dict):
        return bool(value == expected)
    if isinstance(value, bool) or isinstance(expected, bool):
        return as_text(value) == as_text(expected)
    return bool(value == expected or as_text(value) == as_text(expected))


def gt(value: Any, args: Args, ctx: Context) -> bool:
    """Whether the number is greater than N (args[0]: a number, or `{field}`: that field of
    the record); None is not. Handles None."""
    if value is None:
        return False
    return bool(_number(value) > _bound(args[0], ctx))


def le(value: Any, args: Args, ctx: Context) -> bool:
    """Whether the number is at most N (args[0]: a number, or `{field}`: that field of the
    record, where None means no limit: true); None is not. Handles None."""
    if value is None:
        return False
    if arg_value(args[0], ctx) is None:
        return True
    return bool(_number(value) <= _bound(args[0], ctx))


def minus(value: Any, args: Args, ctx: Context) -> Decimal:
    """The exact difference value - N (args[0]: a number, or `{field}`: that field of the
    record, None counting as 0), as `decimal` converts both."""
    bound = Decimal(0) if arg_value(args[0], ctx) is None else _bound(args[0], ctx)
    return to_decimal(value, (), ctx) - to_decimal(bound, (), ctx)


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or _nan(value):
        raise StepFailure(f"needs a number but got {show(value)}: convert it first (e.g. 'int')")
    return value


def _bound(arg: Any, ctx: Context) -> Any:
    """A comparison's N: the number, or the record's field a `{field}` argument names (a
    number, or numeric text as `decimal` reads it)."""
    bound = arg_value(arg, ctx)
    if isinstance(bound, int | float | Decimal) and not isinstance(bound, bool):
        return bound
    if bound is None:
        raise StepFailure(f"the bound {arg} is empty: give the record a value for it")
    try:
        return to_decimal(bound, (), ctx)
    except StepFailure as exc:
        raise StepFailure(f"the bound {arg}: {exc.message}") from None


_FIELD_REF = re.compile(r"^\{(\$key|[A-Za-z_][\w]*(?:\.[\w]+)*)\}$")


def is_field_ref(arg: Any) -> bool:
    """Whether a step argument is written `{field}`: the current record's field, read when the
    step runs (a `with` value included)."""
    return isinstance(arg, str) and _FIELD_REF.match(arg) is not None


def arg_value(arg: Any, ctx: Context) -> Any:
    """A step argument's value for this record: `{field}` (or `{a.b}`, `{$key}`) is read from
    the record; anything else is itself."""
    match = _FIELD_REF.match(arg) if isinstance(arg, str) else None
    if match is None:
        return arg
    name = match.group(1)
    return ctx.key if name == "$key" else walk(ctx.record, path_steps(name))


def not_future(value: Any, args: Args, ctx: Context) -> bool:
    """Whether the date or time is not in the future. None is not. Handles None.

    A time (a datetime, or ISO text with a time) is compared with now. A date alone has no time
    zone: it is in the future only when it is after today everywhere, i.e. in UTC+14; comparing
    it with today in UTC refused entries dated today in every zone east of UTC until midnight UTC.
    """
    if value is None:
        return False
    now = _now()
    if isinstance(value, str):
        value = _parse_moment(value)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)) <= now
    if isinstance(value, dt.date):
        return value <= (now + _EARLIEST_ZONE).date()
    raise StepFailure(f"needs a date but got {show(value)}: convert it first (e.g. 'date')")


_EARLIEST_ZONE = dt.timedelta(hours=14)  # the first time zone to reach a date (Kiribati)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse_moment(text: str) -> Any:
    """ISO text as a date (`2024-03-01`) or a datetime (with a time); the text if neither."""
    try:
        if len(text.strip()) > 10:
            return dt.datetime.fromisoformat(text.strip())
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return text


def is_set(value: Any, args: Args, ctx: Context) -> bool:
    """Whether the value is neither None nor empty. Handles None."""
    return not (value is None or value == "" or value == [] or value == {})


def both_set(value: Any, args: Args, ctx: Context) -> bool:
    """Whether the value and args[0] (usually a `{field}`) are both set. Handles None."""
    return is_set(value, args, ctx) and is_set(arg_value(args[0], ctx), args, ctx)


def not_(value: Any, args: Args, ctx: Context) -> bool:
    """The boolean negation (None → True). Handles None."""
    return not value


def exists(value: Any, args: Args, ctx: Context) -> bool:
    """Whether the canonical entity with this id exists (and is not deleted). Handles None."""
    if value is None:
        return False
    return ctx.lookup.canonical_field(as_text(value), "*") is not None


def field_of(value: Any, args: Args, ctx: Context) -> Any:
    """Field args[0] of the canonical entity whose id is the value (None if it is absent)."""
    return ctx.lookup.canonical_field(as_text(value), args[0])


def referenced_by(value: Any, args: Args, ctx: Context) -> int:
    """How many live ENTITY (args[0]) entities have FIELD (args[1]) equal to the canonical id
    in the value, and, when given, FIELD2 (args[2]) equal to VALUE2 (args[3]) (and FIELD3 to
    VALUE3). Handles None (0). Targets only: what refers to an entity is the outbound side's
    question."""
    return len(_referring(value, args[0], args[1], args[2:], ctx))


def sum_of(value: Any, args: Args, ctx: Context) -> Decimal:
    """The exact sum of SUMFIELD (args[2]) over the live ENTITY (args[0]) entities whose FIELD
    (args[1]) is the value (a canonical id, or any value of FIELD), and, when given, FIELD2
    (args[3]) equals VALUE2 (args[4]) (and FIELD3 VALUE3); missing values count as nothing,
    others convert as `decimal` does (a non-numeric one is an error). Handles None (0).
    Targets only."""
    total = Decimal(0)
    for fields in _referring(value, args[0], args[1], args[3:], ctx):
        amount = fields.get(args[2])
        if amount is None:
            continue
        try:
            total += to_decimal(amount, (), ctx)
        except StepFailure as exc:
            raise StepFailure(
                f"{args[0]}.{args[2]} of a referencing entity: {exc.message}"
            ) from None
    return total


def sums_by(value: Any, args: Args, ctx: Context) -> str | None:
    """`sum_of` per BYFIELD (args[3]) value, as one line of text: the sums of SUMFIELD (args[2])
    over the live ENTITY (args[0]) entities whose FIELD (args[1]) is the value (and FIELD2
    VALUE2 ..., args[4:]), each `<sum to the cent> <BY>`, by BY, joined by "; " — a customer's
    invoiced amount in each currency: `2835.00 EUR; 2700.00 USD`. None when none match."""
    totals: dict[str, Decimal] = {}
    for fields in _referring(value, args[0], args[1], args[4:], ctx):
        amount = fields.get(args[2])
        by = as_text(fields.get(args[3]) or "")
        if amount is None:
            totals.setdefault(by, Decimal(0))
            continue
        try:
            totals[by] = totals.get(by, Decimal(0)) + to_decimal(amount, (), ctx)
        except StepFailure as exc:
            raise StepFailure(
                f"{args[0]}.{args[2]} of a referencing entity: {exc.message}"
            ) from None
    if not totals:
        return None
    cent = Decimal("0.01")
    return "; ".join(f"{totals[by].quantize(cent)} {by}".strip() for by in sorted(totals))


def join(value: Any, args: Args, ctx: Context) -> str:
    """A list's items as text joined by SEP (args[0]); any other value as text."""
    if isinstance(value, list):
        return str(args[0]).join(as_text(v) for v in value)
    return as_text(value)


def latest_of(value: Any, args: Args, ctx: Context) -> str | None:
    """The canonical id of the live ENTITY (args[0]) whose FIELD (args[1]) is the value (and the
    further FIELD VALUE pairs, args[3:]) with the greatest ORDERFIELD (args[2]; ties: the greatest
    id; entities without it come last): a customer's last invoice. Handles None (None)."""
    if value is None:
        return None
    found = [
        (_order_key(fields.get(args[2])), cid)
        for cid, fields in ctx.lookup.referencing(args[0], args[1], as_text(value))
        if matches(fields, args[3:], ctx)
    ]
    return max(found)[1] if found else None


def earliest_of(value: Any, args: Args, ctx: Context) -> str | None:
    """Like `latest_of`, the one with the smallest ORDERFIELD (args[2]; ties: the smallest id);
    entities without it are left out: a customer's next unpaid due date. Handles None."""
    if value is None:
        return None
    found = [
        (_order_key(fields.get(args[2])), cid)
        for cid, fields in ctx.lookup.referencing(args[0], args[1], as_text(value))
        if fields.get(args[2]) is not None and matches(fields, args[3:], ctx)
    ]
    return min(found)[1] if found else None


def values_of(value: Any, args: Args, ctx: Context) -> list[Any]:
    """The distinct values of OUTFIELD (args[2]) of the live ENTITY (args[0]) entities whose
    FIELD (args[1]) is the value (and the further FIELD VALUE pairs, args[3:]), sorted as
    text, without nulls: the people assigned to a project. Handles None ([])."""
    found: dict[str, Any] = {}
    for fields in _referring(value, args[0], args[1], args[3:], ctx):
        out = fields.get(args[2])
        if out is not None:
            found.setdefault(as_text(out), out)
    return [found[k] for k in sorted(found)]


def _order_key(value: Any) -> tuple[int, int, Decimal, str]:
    """How `latest_of` orders values: missing first, then numbers by value (2 < 10), then
    texts (ISO dates and times order as text)."""
    if value is None:
        return (0, 0, Decimal(0), "")
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return (1, 0, Decimal(str(value)), "")
    return (1, 1, Decimal(0), as_text(value))


def _referring(
    value: Any, entity: str, field: str, where: tuple[Any, ...], ctx: Context
) -> list[dict[str, Any]]:
    """The fields of the live `entity` entities whose `field` is `value` (none for None), and,
    with `where` = (FIELD2, VALUE2, ...), whose FIELD2 equals VALUE2 (as `equals` compares; one
    of it when VALUE2 is a list; `{field}`: the current record's field)."""
    if value is None:
        return []
    found = ctx.lookup.referencing(entity, field, as_text(value))
    return [f for _, f in found if matches(f, where, ctx)]


def matches(fields: dict[str, Any], where: tuple[Any, ...], ctx: Context) -> bool:
    """Whether `fields` satisfy every (FIELD, VALUE) pair of `where` (see `_referring`)."""
    for i in range(0, len(where), 2):
        wanted = arg_value(where[i + 1], ctx)
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(equals(fields.get(where[i]), (o,), ctx) for o in options):
            return False
    return True


def in_force(value: Any, args: Args, ctx: Context) -> str | None:
    """The canonical id of the live ENTITY (args[0]) in force on the date in the value: among
    those whose FIELD (args[1]) equals VALUE (args[2]) and every further FIELD VALUE pair
    (`{field}`: the current record's field), the ones with `valid_from` (None: always) on or
    before the date and `valid_to` (None: open-ended) on or after it; of several, the latest
    `valid_from`. None when none is. Handles None (None). Targets only."""
    if value is None:
        return None
    day = _day(value)
    entity, field = args[0], args[1]
    key = arg_value(args[2], ctx)
    if key is None:
        return None
    best: tuple[dt.date, str] | None = None
    for cid, fields in ctx.lookup.referencing(entity, field, as_text(key)):
        if not matches(fields, args[3:], ctx):
            continue
        start, end = fields.get("valid_from"), fields.get("valid_to")
        since = _day(start) if start is not None else dt.date.min
        if since > day or (end is not None and _day(end) < day):
            continue
        if best is None or (since, cid) > best:
            best = (since, cid)
    return None if best is None else best[1]


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        moment = _parse_moment(value)
        if isinstance(moment, dt.datetime):
            return moment.date()
        if isinstance(moment, dt.date):
            return moment
    raise StepFailure(f"needs a date but got {show(value)}: convert it first (e.g. 'date')")


def slug(value: Any, args: Args, ctx: Context) -> str:
    """Lower-case text with every run of characters other than a-z, 0-9 and '/' as '-'."""
    text = _SLUG.sub("-", as_text(value).lower())
    return "/".join(part.strip("-") for part in text.split("/"))
