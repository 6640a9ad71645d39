"""The reports finance and compliance read (`synchub report NAME`): each a function of the
store, as of a moment (`position`) and, for the reports of a period, between two times.

- `unposted-time`: approved time not yet posted, per project and entry, against the cut-off;
- `time-to-invoice`: per project, approved hours in the tracker vs posted in the ERP vs
  invoiced, with every difference explained entry by entry;
- `rate-changes`: rate cards changed in a period (who, when, old → new) and the entries valued
  at them;
- `exceptions`: exceptions opened in a period, and how long those resolved took.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hub import indicators, valuation
from hub.config import Settings
from hub.reports.model import Chart, Column, Report, Section
from hub.store.base import EventStore
from projections import audit, backlog, canonical_queries
from projections import exceptions as exc
from projections.as_of import AsOfLookup
from projections.mappings import mapping_at

__all__ = ["REPORTS", "Period"]

Period = tuple[dt.datetime, dt.datetime] | None
Builder = Callable[[EventStore, Settings, int | None, Period], Report]


def unposted_time(
    store: EventStore, settings: Settings, position: int | None, _p: Period
) -> Report:
    data = indicators.indicators(store, settings.indicators, position=position)
    u = data["unposted_time"]
    report = _report("unposted-time", "Approved time not yet posted", data)
    worth = "; ".join(f"{v['value']} {v['currency']}" for v in u["values"]) or "no value"
    report.summary = [
        f"{u['entries']} approved entries, {u['hours']} h worth {worth}, wait to be posted to "
        f"{', '.join(u['targets']) or 'the ERP'}.",
        *(
            f"{r['legal_entity_id']}: next invoice cut-off {r['cutoff'][:16]}"
            f" ({r['cutoff_in_s'] // 3600} h away)"
            for r in _first_per(u["rows"], "legal_entity_id")
        ),
    ]
    report.sections = [
        Section(
            "Entries waiting",
            [
                Column("entry", "Entry"),
                Column("person", "Person"),
                Column("date", "Date", "date"),
                Column("project", "Project"),
                Column("hours", "Hours", "decimal"),
                Column("value", "Value", "decimal"),
                Column("currency", "Currency"),
                Column("waiting_since", "Waiting since", "datetime"),
                Column("problem", "Problem"),
            ],
            [
                {
                    "entry": e["canonical_id"],
                    "person": e["person_id"],
                    "date": e["date"],
                    "project": e["project_id"],
                    "hours": e["hours"],
                    "value": e["value"],
                    "currency": e["currency"],
                    "waiting_since": e["waiting_since"],
                    "problem": e["problem"],
                }
                for e in sorted(u["waiting"], key=lambda e: (e["project_id"], e["canonical_id"]))
            ],
            totals={"entry": f"{u['entries']} entries", "hours": u["hours"]},
        ),
        Section(
            "By project",
            [
                Column("project", "Project"),
                Column("legal_entity", "Legal entity"),
                Column("entries", "Entries", "int"),
                Column("hours", "Hours", "decimal"),
                Column("value", "Value"),
                Column("converted", "In the entity's currency", "decimal"),
                Column("cutoff", "Cut-off", "datetime"),
            ],
            [
                {
                    "project": r["project"] or r["project_id"],
                    "legal_entity": r["legal_entity_id"],
                    "entries": r["entries"],
                    "hours": r["hours"],
                    "value": "; ".join(f"{v['value']} {v['currency']}" for v in r["values"]),
                    "converted": r["converted"],
                    "cutoff": r["cutoff"],
                }
                for r in u["rows"]
            ],
            totals={"project": "Total", "entries": u["entries"], "hours": u["hours"]},
            chart=Chart(
                "Hours waiting per project",
                [str(r["project"] or r["project_id"]) for r in u["rows"]],
                [float(r["hours"]) for r in u["rows"]],
                "h",
            ),
        ),
    ]
    return report


def time_to_invoice(
    store: EventStore, settings: Settings, position: int | None, _p: Period
) -> Report:
    """Approved vs posted vs invoiced per project; each approved entry not posted, and why."""
    data = _moment(store, position)
    with store.db.transaction(commit=False) as c:
        lookup = AsOfLookup(c, position)
        waiting = set(backlog.waiting_at(c, position))
        reasons = {e["canonical_id"]: e["message"] for e in exc.open_at(c, position)}
        per: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        unposted = []
        for cid, fields in lookup.entities("TimeEntry"):
            if fields.get("approved") is not True:
                continue
            project = fields.get("project_id") or "(no project)"
            hours = Decimal(fields.get("minutes") or 0) / 60
            per[project]["approved"] += hours
            if cid in waiting:
                unposted.append((project, cid, fields, hours))
            else:
                per[project]["posted"] += hours
        invoiced: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for _cid, inv in lookup.entities("Invoice"):
            if inv.get("project_id") and inv.get("total") is not None:
                invoiced[inv["project_id"]][str(inv.get("currency"))] += Decimal(str(inv["total"]))
        names = {p: lookup.canonical_field(p, "name") for p in set(per) | set(invoiced) if "/" in p}
    report = _report("time-to-invoice", "Time to invoice, per project", data)
    rows = []
    for project in sorted(set(per) | set(invoiced)):
        a, p = per[project]["approved"], per[project]["posted"]
        rows.append(
            {
                "project": names.get(project) or project,
                "approved": _h(a),
                "posted": _h(p),
                "difference": _h(a - p),
                "invoiced": "; ".join(f"{v:.2f} {k}" for k, v in sorted(invoiced[project].items())),
            }
        )
    total_a = sum((per[p]["approved"] for p in per), Decimal(0))
    total_p = sum((per[p]["posted"] for p in per), Decimal(0))
    report.summary = [
        f"{_h(total_a)} h approved in the tracker, {_h(total_p)} h posted to the ERP: "
        f"{_h(total_a - total_p)} h in {len(unposted)} entries not posted (each below, with why).",
    ]
    report.sections = [
        Section(
            "Approved, not posted: why",
            [
                Column("entry", "Entry"),
                Column("project", "Project"),
                Column("date", "Date", "date"),
                Column("hours", "Hours", "decimal"),
                Column("why", "Why"),
            ],
            [
                {
                    "entry": cid,
                    "project": names.get(project) or project,
                    "date": fields.get("date"),
                    "hours": _h(hours),
                    "why": reasons.get(cid, "waiting for the next sync pass"),
                }
                for project, cid, fields, hours in sorted(unposted, key=lambda u: (u[0], u[1]))
            ],
            totals={"entry": f"{len(unposted)} entries", "hours": _h(total_a - total_p)},
        ),
        Section(
            "Per project",
            [
                Column("project", "Project"),
                Column("approved", "Approved h", "decimal"),
                Column("posted", "Posted h", "decimal"),
                Column("difference", "Not posted h", "decimal"),
                Column("invoiced", "Invoiced"),
            ],
            rows,
            totals={
                "project": "Total",
                "approved": _h(total_a),
                "posted": _h(total_p),
                "difference": _h(total_a - total_p),
            },
            chart=Chart(
                "Hours approved but not posted, per project",
                [r["project"] for r in rows],
                [float(r["difference"]) for r in rows],
                "h",
            ),
        ),
    ]
    return report


def rate_changes(
    store: EventStore, settings: Settings, position: int | None, period: Period
) -> Report:
    """Rate cards created or changed in the period, and the entries valued at them."""
    start, end = _period(store, period)
    data = _moment(store, position)
    changes = []
    with store.db.transaction(commit=False) as c:
        for cid in canonical_queries.ids_of(c, "RateCard"):
            for h in audit.history(c, cid):
                if start < h["position"] <= end:
                    changes.append(h)
    valued = []
    for cid in sorted({h["canonical_id"] for h in changes}):
        valued += valuation.valuations(store, rate_id=cid, position=position)["entries"]
    report = _report("rate-changes", "Rate changes", data, period)
    report.summary = [
        f"{len({h['canonical_id'] for h in changes})} rate cards changed ({len(changes)} field "
        f"changes); {len(valued)} entries are valued at them."
    ]
    report.sections = [
        Section(
            "Changes",
            [
                Column("rate_card", "Rate card"),
                Column("field", "Field"),
                Column("old", "Old"),
                Column("new", "New"),
                Column("changed_by", "Changed by"),
                Column("at", "When", "datetime"),
            ],
            [
                {
                    "rate_card": h["canonical_id"],
                    "field": h["field"],
                    "old": h["old"],
                    "new": h["new"],
                    "changed_by": _changed_by(store, h),
                    "at": _time(store, h["position"]),
                }
                for h in changes
            ],
        ),
        Section(
            "Entries valued at those rates",
            [
                Column("entry", "Entry"),
                Column("date", "Date", "date"),
                Column("hours", "Hours", "decimal"),
                Column("rate", "Rate card"),
                Column("hourly_rate", "Rate", "decimal"),
                Column("value", "Value", "decimal"),
                Column("currency", "Currency"),
            ],
            [
                {
                    "entry": v["canonical_id"],
                    "date": v["date"],
                    "hours": v["hours"],
                    "rate": v["rate_id"],
                    "hourly_rate": v["hourly_rate"],
                    "value": v["value"],
                    "currency": v["currency"],
                }
                for v in valued
            ],
        ),
    ]
    return report


def exceptions(
    store: EventStore, settings: Settings, position: int | None, period: Period
) -> Report:
    """Exceptions opened in the period; for those settled, how long it took."""
    start, end = _period(store, period)
    data = _moment(store, position)
    with store.db.transaction(commit=False) as c:
        rows = [e for e in exc.listed(c, "all") if start < int(e["first_position"]) <= end]
    out, hours = [], []
    for e in rows:
        opened = store.time_of(int(e["first_position"]))
        settled = e["status"] in ("resolved", "ignored")
        closed = store.time_of(int(e["position"])) if settled else None
        took = (closed - opened).total_seconds() / 3600 if opened and closed else None
        if took is not None:
            hours.append(took)
        out.append(
            {
                "id": e["id"],
                "kind": e["kind"],
                "subject": e["subject"],
                "status": e["status"],
                "opened": opened,
                "settled": closed,
                "hours": None if took is None else f"{took:.2f}",
                "message": e["message"],
            }
        )
    report = _report("exceptions", "Exceptions opened and resolved", data, period)
    median = f"{statistics.median(hours):.2f} h" if hours else "—"
    report.summary = [
        f"{len(out)} exceptions opened; {len(hours)} resolved or ignored (median time to "
        f"resolution {median}); {len(out) - len(hours)} still open."
    ]
    kinds = sorted({r["kind"] for r in out})
    report.sections = [
        Section(
            "Exceptions",
            [
                Column("id", "Id"),
                Column("kind", "Kind"),
                Column("subject", "About"),
                Column("status", "Status"),
                Column("opened", "Opened", "datetime"),
                Column("settled", "Settled", "datetime"),
                Column("hours", "Hours to settle", "decimal"),
                Column("message", "What"),
            ],
            out,
            totals={
                "id": f"{len(out)} exceptions",
                "hours": f"{sum(hours):.2f}" if hours else None,
            },
            chart=Chart(
                "Exceptions opened, per kind",
                kinds,
                [float(sum(1 for r in out if r["kind"] == k)) for k in kinds],
            ),
        )
    ]
    return report


REPORTS: dict[str, tuple[str, Builder]] = {
    "unposted-time": ("approved time not yet posted, per entry and project", unposted_time),
    "time-to-invoice": (
        "approved vs posted vs invoiced per project, differences explained",
        time_to_invoice,
    ),
    "rate-changes": (
        "rate cards changed in a period, and the entries valued at them",
        rate_changes,
    ),
    "exceptions": ("exceptions opened in a period, and their time to resolution", exceptions),
}
"""Report name → (what it shows, its builder)."""


def _report(name: str, title: str, data: dict[str, Any], period: Period = None) -> Report:
    return Report(
        name=name,
        title=title,
        as_of=data["as_of"],
        position=data["position"],
        mapping_version=data["mapping_version"],
        period=None if period is None else (period[0].isoformat(), period[1].isoformat()),
    )


def _moment(store: EventStore, position: int | None) -> dict[str, Any]:
    """The position, time and mapping version a report reflects, as `indicators` gives them,
    for the reports that need nothing else of them."""
    when = (store.time_of(position) if position is not None else None) or dt.datetime.now(dt.UTC)
    with store.db.transaction(commit=False) as c:
        mapping = mapping_at(c, position)
    return {
        "position": position if position is not None else store.head(),
        "as_of": when.isoformat(),
        "mapping_version": mapping.version if mapping is not None else None,
    }


def _period(store: EventStore, period: Period) -> tuple[int, int]:
    """The positions after `from` up to `to` (the whole log without a period)."""
    if period is None:
        return 0, store.head()
    return store.position_at(period[0]), store.position_at(period[1])


def _first_per(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    seen: dict[Any, dict[str, Any]] = {}
    for r in rows:
        seen.setdefault(r[key], r)
    return list(seen.values())


def _changed_by(store: EventStore, h: dict[str, Any]) -> str:
    if h["field"] == "changed_by":
        return str(h["new"] or "")
    with store.db.transaction(commit=False) as c:
        then = audit.state_at(c, h["canonical_id"], h["position"]) or {}
    return str(then.get("changed_by") or "")


def _time(store: EventStore, position: int) -> str | None:
    when = store.time_of(position)
    return None if when is None else when.isoformat()


def _h(d: Decimal) -> str:
    return f"{d.quantize(Decimal('0.01')):f}"
