"""Valuations: what canonical entities are worth (a time entry's hours at the rate in force on
its day), now or as of a past time or position, by the mapping's `valuations` rules.

Computed on read from the audit trail (projections.as_of), never stored: the same events give
the same values, a rebuild changes nothing, and a rate corrected later revalues the entries it
applies to from the position it was corrected at. Results are plain dicts, ready for JSON or
tables (amounts as decimal text).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from hub.errors import SyncHubError
from hub.mapping import Mapping
from hub.mapping.valuation import Valuation, ValuationRule
from hub.store.base import EventStore
from projections.as_of import AsOfLookup
from projections.mappings import mapping_at

__all__ = ["rate_entities", "valuations"]

HOURS = Decimal("0.0001")


def rate_entities(store: EventStore) -> dict[str, str]:
    """Rate entity (e.g. RateCard) → the entity the active mapping values with it."""
    with store.db.transaction(commit=False) as c:
        mapping = mapping_at(c, None)
    if mapping is None:
        return {}
    return {rate: rule.entity for rule in mapping.valuations() for rate in _rates_of(rule)}


def valuations(
    store: EventStore,
    entity: str | None = None,
    *,
    position: int | None = None,
    as_of: dt.datetime | None = None,
    rate_id: str | None = None,
    canonical_id: str | None = None,
) -> dict[str, Any]:
    """Every valued `entity` (default: the one the mapping values, if only one) as of a time
    or position (default: now), under the mapping in force then; only those valued with
    `rate_id`, or only `canonical_id`, when given. Totals per currency; entities without a
    rate are listed with the reason and counted apart. SyncHubError when the mapping values
    nothing (or not `entity`), saying how to add a rule."""
    if as_of is not None:
        position = store.position_at(as_of)
    with store.db.transaction(commit=False) as c:
        mapping = mapping_at(c, position)
        rule = _rule(mapping, entity)
        lookup = AsOfLookup(c, position)
        if canonical_id is not None:
            fields = lookup.canonical_field(canonical_id, "*")
            found = [] if fields is None else [(canonical_id, fields)]
        else:
            found = lookup.entities(rule.entity)
        rows = []
        for cid, fields in found:
            valued = rule.value(fields, cid.split("/", 1)[1], lookup)
            if valued is None or (rate_id is not None and valued.rate_id != rate_id):
                continue
            rows.append(_row(cid, fields, valued))
    assert mapping is not None
    return {
        "entity": rule.entity,
        "position": position if position is not None else store.head(),
        "as_of": as_of.isoformat() if as_of else None,
        "mapping_version": mapping.version,
        "rate_id": rate_id,
        "entries": rows,
        "totals": _totals(rows),
        "unvalued": sum(1 for r in rows if r["value"] is None),
    }


def _rule(mapping: Mapping | None, entity: str | None) -> ValuationRule:
    rules = mapping.valuations() if mapping is not None else ()
    how = "add a `valuations` rule to the mapping (docs/mappings.md, Valuations) and deploy it"
    if entity is None:
        if len(rules) == 1:
            return rules[0]
        if not rules:
            raise SyncHubError(f"the mapping values nothing: {how}")
        names = ", ".join(r.entity for r in rules)
        raise SyncHubError(f"the mapping values {names}: name the entity to value")
    rule = None if mapping is None else mapping.valuation(entity)
    if rule is None:
        raise SyncHubError(f"the mapping does not value {entity}: {how}")
    return rule


def _rates_of(rule: ValuationRule) -> set[str]:
    """The entities a rule's rate comes from (those its in_force/latest_of/earliest_of read)."""
    return {
        str(args[0])
        for pipeline in rule.pipelines()
        for name, _, args, _ in pipeline.steps
        if name in ("in_force", "latest_of", "earliest_of")
    }


def _row(cid: str, fields: dict[str, Any], v: Valuation) -> dict[str, Any]:
    return {
        "canonical_id": cid,
        "date": fields.get("date"),
        "hours": None if v.hours is None else _plain(v.hours.quantize(HOURS)),
        "rate_id": v.rate_id,
        "hourly_rate": None if v.hourly_rate is None else str(v.hourly_rate),
        "currency": v.currency,
        "value": None if v.value is None else str(v.value),
        "problem": v.problem,
    }


def _totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency: entries, hours and value of the valued rows."""
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
    for r in rows:
        if r["value"] is None:
            continue
        total = sums[str(r["currency"])]
        total[0] += 1
        total[1] += Decimal(r["hours"])
        total[2] += Decimal(r["value"])
    return [
        {"currency": cur, "entries": int(n), "hours": _plain(h), "value": str(v)}
        for cur, (n, h, v) in sorted(sums.items())
    ]


def _plain(d: Decimal) -> str:
    """A decimal without trailing zeros or exponent: 2, 1.5, 100."""
    return f"{d.normalize():f}"
