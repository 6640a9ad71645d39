"""Business indicators, now or as of any past time or position: what the firm needs to know
before a deadline is missed, read from the canonical state as it was then (no replay).

- **unposted time**: approved time entries not yet written to the system their time is posted
  to (projections.backlog: the TimeEntry target rules of another system than the tracker, the
  ERP; an indexed query of the entries waiting then, however long the log), per project and
  legal entity: entries, hours, the value in each currency (the mapping's TimeEntry valuation)
  and converted to the legal entity's currency (`indicators.exchange_rates`), the age of the
  oldest (since it was approved, or since its day when the tracker does not say), and the
  next invoice cut-off in the entity's time zone with the time left (hub.cutoff);
- **projects missing billing rules**: open projects without a billing method, or with approved
  time waiting to be posted that has no rate (each reason said);
- **deals won but not provisioned**: won opportunities (`indicators.won_states`) that no
  project names, with the time since they were won;
- **open exceptions** per workflow and kind, with the age of the oldest;
- **sync latency** per workflow and **invoices delayed** by synchronization errors
  (hub.flow_indicators).

Everything comes from the backlog, the audit trail and the exceptions as they were after the
position (projections.as_of): the same events give the same values, and a rebuild changes
nothing. Amounts are decimal text; times ISO 8601; ages in seconds.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from functools import lru_cache
from typing import Any

from hub import flow_indicators
from hub.config import IndicatorSettings
from hub.cutoff import next_cutoff, previous_cutoff, zone
from hub.errors import ConfigError
from hub.mapping import Mapping
from hub.mapping.valuation import ValuationRule
from hub.store.base import Cursor, EventStore
from hub.store.streams import EventType, outbound_stream
from projections import backlog, exceptions
from projections.as_of import AsOfLookup
from projections.mappings import mapping_at

__all__ = ["indicators"]

CLOSED = frozenset(("done", "closed", "cancelled", "canceled", "archived"))
"""Project statuses that need no billing rules any more."""
_CENT = Decimal("0.01")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def indicators(
    store: EventStore,
    settings: IndicatorSettings | None = None,
    *,
    position: int | None = None,
    as_of: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Every indicator as of `as_of` (a time) or `position` (default: now). Ages and the time
    left are measured at that moment (`now` stands for the present, for tests)."""
    settings = settings or IndicatorSettings()
    if as_of is not None:
        position = store.position_at(as_of)
        when = as_of
    elif position is not None:
        when = store.time_of(position) or now or dt.datetime.now(dt.UTC)
    else:
        when = now or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    with store.db.transaction(commit=False) as c:
        mapping = mapping_at(c, position)
        lookup = AsOfLookup(c, position)
        unposted, unrated = _unposted(c, mapping, lookup, settings, position, when)
        open_now = exceptions.open_at(c, position)
        data = {
            "position": position if position is not None else store.head(),
            "as_of": when.isoformat(),
            "mapping_version": mapping.version if mapping is not None else None,
            "unposted_time": unposted,
            "projects_missing_billing": _missing_billing(lookup, unrated),
            "deals_not_provisioned": _unprovisioned(
                store, mapping, lookup, settings, position, when
            ),
            "open_exceptions": _open_exceptions(store, open_now, when),
            "sync_latency": flow_indicators.latency(c, position, when, settings.latency_window),
            "invoices_delayed": flow_indicators.delayed_invoices(lookup, open_now),
        }
    return data


# -- approved time not yet posted ---------------------------------------------------------------


def _unposted(
    c: Cursor,
    mapping: Mapping | None,
    lookup: AsOfLookup,
    settings: IndicatorSettings,
    position: int | None,
    when: dt.datetime,
) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """The unposted-time indicator, and per project the reasons its waiting time has no rate."""
    targets = sorted(backlog.posting_targets(mapping))
    rule = mapping.valuation("TimeEntry") if mapping is not None else None
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    unrated: dict[str, set[str]] = defaultdict(set)
    waiting = backlog.waiting_at(c, position)
    lookup.prefetch(waiting)
    entries = []
    for cid in waiting:
        fields = lookup.canonical_field(cid, "*")
        if not isinstance(fields, dict):
            continue
        project = fields.get("project_id") or "(no project)"
        hours, value, currency, problem = _value(rule, cid, fields, lookup)
        if problem is not None:
            unrated[project].add(problem)
        entity_id = lookup.canonical_field(project, "legal_entity_id") if "/" in project else None
        group = groups.setdefault(
            (project, entity_id or "(no legal entity)"),
            {"entries": 0, "hours": Decimal(0), "values": defaultdict(Decimal), "oldest": None},
        )
        group["entries"] += 1
        group["hours"] += hours
        if value is not None and currency is not None:
            group["values"][currency] += value
        since = _approved_since(fields)
        if since is not None and (group["oldest"] is None or since < group["oldest"]):
            group["oldest"] = since
        entries.append(
            {
                "canonical_id": cid,
                "person_id": fields.get("person_id"),
                "date": fields.get("date"),
                "project_id": project,
                "hours": _plain(hours),
                "value": None if value is None else str(value.quantize(_CENT)),
                "currency": currency,
                "waiting_since": None if since is None else _iso(since),
                "problem": problem,
            }
        )
    rows = [
        _group_row(project, entity_id, g, lookup, settings, when)
        for (project, entity_id), g in sorted(groups.items())
    ]
    return {
        "targets": [f"{s}/{o}" for s, o in targets],
        "rows": rows,
        "entries": sum(r["entries"] for r in rows),
        "hours": _plain(sum((Decimal(r["hours"]) for r in rows), Decimal(0))),
        "values": _sum_values(rows),
        "waiting": entries,
    }, unrated


def _value(
    rule: ValuationRule | None, cid: str, fields: dict[str, Any], lookup: AsOfLookup
) -> tuple[Decimal, Decimal | None, str | None, str | None]:
    """(hours, value, currency, why there is no value) of an approved entry."""
    minutes = fields.get("minutes") or 0
    hours = Decimal(minutes) / 60
    if rule is None:
        return hours, None, None, None
    valued = rule.value(fields, cid.split("/", 1)[1], lookup)
    if valued is None:
        return hours, None, None, None
    if valued.hours is not None:
        hours = valued.hours
    return hours, valued.value, valued.currency, valued.problem


def _approved_since(fields: dict[str, Any]) -> int | None:
    """When an entry was approved (µs), or the start of its day when that is not known."""
    approved_at = fields.get("approved_at")
    if isinstance(approved_at, int):
        return approved_at
    return _day_start(fields.get("date"))


def _day_start(day: Any) -> int | None:
    """The start of an ISO day (UTC, µs); None for anything else."""
    return _day_start_text(day) if isinstance(day, str) else None


@lru_cache(maxsize=4096)  # a backlog's entries share a few hundred days (12 µs each, measured)
def _day_start_text(day: str) -> int | None:
    if day:
        try:
            return _us(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC))
        except ValueError:
            return None
    return None


def _group_row(
    project: str,
    entity_id: str,
    g: dict[str, Any],
    lookup: AsOfLookup,
    settings: IndicatorSettings,
    when: dt.datetime,
) -> dict[str, Any]:
    entity = lookup.canonical_field(entity_id, "*") if "/" in entity_id else None
    entity = entity if isinstance(entity, dict) else {}
    home = entity.get("currency")
    converted, missing = _convert(g["values"], home, settings.exchange_rates)
    try:
        tz = zone(entity.get("timezone"))
    except ConfigError:
        tz = dt.UTC
    cut = settings.invoice_cutoff
    cutoff = next_cutoff(when, cut.days, cut.at, tz)
    missed = previous_cutoff(when, cut.days, cut.at, tz)
    oldest = g["oldest"]
    return {
        "project_id": project,
        "project": lookup.canonical_field(project, "name") if "/" in project else None,
        "legal_entity_id": entity_id,
        "entries": g["entries"],
        "hours": _plain(g["hours"]),
        "values": [
            {"currency": cur, "value": str(v.quantize(_CENT))}
            for cur, v in sorted(g["values"].items())
        ],
        "currency": home,
        "converted": None if converted is None else str(converted.quantize(_CENT)),
        "missing_rates": missing,
        "oldest_age_s": None if oldest is None else max(0, (_us(when) - oldest) // 1_000_000),
        "cutoff": cutoff.isoformat(),
        "cutoff_in_s": int((cutoff - when).total_seconds()),
        "previous_cutoff": missed.isoformat(),
        "oldest_missed_cutoff": oldest is not None and oldest < _us(missed),
    }


def _convert(
    values: dict[str, Decimal], home: str | None, rates: dict[str, Decimal]
) -> tuple[Decimal | None, list[str]]:
    """The sum of `values` in currency `home`, and the pairs without a rate (then None)."""
    if home is None or not values:
        return None, []
    total, missing = Decimal(0), []
    for cur, value in values.items():
        if cur == home:
            total += value
        elif f"{cur}/{home}" in rates:
            total += value * rates[f"{cur}/{home}"]
        elif f"{home}/{cur}" in rates:
            total += value / rates[f"{home}/{cur}"]
        else:
            missing.append(f"{cur}/{home}")
    return (None if missing else total), missing


def _sum_values(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        for v in r["values"]:
            sums[v["currency"]] += Decimal(v["value"])
    return [{"currency": c, "value": str(v)} for c, v in sorted(sums.items())]


# -- projects, deals, exceptions ---------------------------------------------------------------


def _missing_billing(lookup: AsOfLookup, unrated: dict[str, set[str]]) -> list[dict[str, Any]]:
    """Open projects without a billing method or with approved time that has no rate."""
    rows = []
    for cid, fields in lookup.entities("Project"):
        if str(fields.get("status") or "").lower() in CLOSED:
            continue
        reasons = []
        if not fields.get("billing_method"):
            reasons.append("no billing method")
        reasons += sorted(unrated.get(cid, ()))
        if reasons:
            rows.append({"project_id": cid, "project": fields.get("name"), "reasons": reasons})
    return rows


def _unprovisioned(
    store: EventStore,
    mapping: Mapping | None,
    lookup: AsOfLookup,
    settings: IndicatorSettings,
    position: int | None,
    when: dt.datetime,
) -> list[dict[str, Any]]:
    """Won opportunities not provisioned: no project names them (its `opportunity_id`) and
    no target record was written for them by then (a project made from the deal); oldest
    first. A deal's age counts from `won_at`, or its `expected_close` day when that is not
    known."""
    provisioned = {f.get("opportunity_id") for _, f in lookup.entities("Project")}
    won = set(settings.won_states)
    rows = []
    for cid, fields in lookup.entities("Opportunity"):
        if fields.get("state") not in won or cid in provisioned:
            continue
        if _written(store, mapping, cid, position):
            continue
        since = fields.get("won_at")
        if not isinstance(since, int):
            since = _day_start(fields.get("expected_close"))
        account = fields.get("account_id")
        rows.append(
            {
                "opportunity_id": cid,
                "name": fields.get("name"),
                "account_id": account,
                "account": lookup.canonical_field(account, "name") if account else None,
                "won_age_s": None if since is None else max(0, (_us(when) - since) // 1_000_000),
            }
        )
    return sorted(rows, key=lambda r: -(r["won_age_s"] or 0))


def _written(store: EventStore, mapping: Mapping | None, cid: str, position: int | None) -> bool:
    """Whether a target record of `cid` was written (and not deleted since) by `position`:
    its outbound streams' outcomes, read up to then (a deal has a few)."""
    rules = mapping.outbound(cid.split("/", 1)[0]) if mapping is not None else []
    for rule in rules:
        op, written = "create", False
        for e in store.read_stream(outbound_stream(rule.system, rule.object, cid)):
            if position is not None and e.position > position:
                break
            d: Any = store.decode(e)
            if e.type == EventType.DELTA_PLANNED:
                op = d["op"]
            elif e.type == EventType.WRITE_ATTEMPTED and d["status"] == "applied":
                written = op != "delete"
        if written:
            return True
    return False


def _open_exceptions(
    store: EventStore, open_then: list[dict[str, Any]], when: dt.datetime
) -> list[dict[str, Any]]:
    """Open exceptions (`exceptions.open_at`) per workflow and kind: how many, and the age of
    the oldest."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for e in open_then:
        key = (_workflow(e), str(e["kind"]))
        g = groups.setdefault(key, {"count": 0, "first_position": e["first_position"]})
        g["count"] += 1
        g["first_position"] = min(g["first_position"], e["first_position"])
    rows = []
    for (workflow, kind), g in sorted(groups.items()):
        opened = store.time_of(int(g["first_position"]))
        age = None if opened is None else max(0, int((when - opened).total_seconds()))
        rows.append({"workflow": workflow, "kind": kind, "count": g["count"], "oldest_age_s": age})
    return rows


def _workflow(e: dict[str, Any]) -> str:
    """What an exception holds up: `Entity → system/object` for a target's, `system/object →
    Entity` for a source record's (quarantined input: the object alone)."""
    where = f"{e['system']}/{e['object']}" if e["system"] else "?"
    if e["kind"] in ("plan", "write"):
        return f"{e['entity'] or '?'} → {where}"
    if e["entity"]:
        return f"{where} → {e['entity']}"
    return where


def _iso(us: int) -> str:
    return (_EPOCH + us * _MICROSECOND).isoformat()


def _us(t: dt.datetime) -> int:
    """Microseconds since the epoch of an aware time."""
    return (t - _EPOCH) // _MICROSECOND


def _plain(d: Decimal) -> str:
    """A decimal without trailing zeros or exponent: 2, 1.5, 100."""
    return f"{d.quantize(Decimal('0.0001')).normalize():f}"
