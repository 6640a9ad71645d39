"""A valuation rule: what one canonical entity is worth — its hours at the hourly rate of the
rate entity its `rate` pipeline finds (e.g. the RateCard in force on a time entry's day, for
its labor category, legal entity and currency).

A read-side rule: it writes nothing and changes no state. Evaluated over a Lookup of the
canonical state now or as of a past position (hub.valuation), so the same events give the
same values, and a rate changed later revalues the entries it applies to.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.errors import MappingError
from hub.mapping.pipeline import Pipeline
from hub.mapping.record import truthy
from hub.mapping.rules import Fields, Record
from hub.mapping.runtime import Context, Lookup

__all__ = ["CENT", "Valuation", "ValuationRule"]

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Valuation:
    """One entity's value: `hours` times `hourly_rate` of `rate_id` = `value` in `currency`.
    Without a rate (none in force, or the rule failed) `rate_id`/`value` are None and
    `problem` says why."""

    hours: Decimal | None
    rate_id: str | None
    hourly_rate: Decimal | None
    currency: str | None
    value: Decimal | None
    problem: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ValuationRule:
    """Values canonical `entity` records (see the module docstring)."""

    entity: str
    let: Fields
    when: Pipeline | None
    hours: Pipeline
    rate: Pipeline
    rate_field: str = "hourly_rate"
    currency_field: str = "currency"

    def pipelines(self) -> list[Pipeline]:
        out = [p for _, p in self.let] + [self.hours, self.rate]
        return out + ([self.when] if self.when is not None else [])

    def value(self, canonical: Record, natural_id: str, lookup: Lookup) -> Valuation | None:
        """The record's valuation; None when its `when` is false (it is not valued at all).
        A pipeline that fails gives a Valuation without value whose `problem` says why."""
        record = dict(canonical)
        ctx = Context(record, natural_id, "", "valuation", lookup)
        try:
            for name, pipeline in self.let:
                record[name] = pipeline.evaluate(ctx, f"with.{name}")
            if self.when is not None and not truthy(
                self.when.evaluate(ctx, "when"), self.when, "when"
            ):
                return None
            hours = _decimal(self.hours.evaluate(ctx, "hours"), "hours")
            rate_id = self.rate.evaluate(ctx, "rate")
        except MappingError as exc:
            return Valuation(None, None, None, None, None, str(exc))
        if rate_id is None:
            return Valuation(hours, None, None, None, None, "no rate in force")
        rate_id = str(rate_id)
        try:
            rate = _decimal(lookup.canonical_field(rate_id, self.rate_field), self.rate_field)
        except MappingError as exc:
            return Valuation(hours, rate_id, None, None, None, f"{rate_id}: {exc}")
        currency = lookup.canonical_field(rate_id, self.currency_field)
        if rate is None or hours is None:
            what = self.rate_field if rate is None else "hours"
            return Valuation(hours, rate_id, rate, currency, None, f"no {what}")
        return Valuation(hours, rate_id, rate, currency, (hours * rate).quantize(CENT))


def _decimal(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _not_a_number(value, what)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise _not_a_number(value, what) from None


def _not_a_number(value: Any, what: str) -> MappingError:
    return MappingError(f"{what} is {value!r}, not a number", field=what, rule="valuation")
