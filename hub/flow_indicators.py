"""Two indicators of how the flow itself is doing, as of a position (hub.indicators adds them):

- **sync latency per workflow**: for the target records written in the window before the
  moment (`indicators.latency_window`; the latest SAMPLE of them), from the change at its
  source (its source time, else its capture) to the write applied at the target: p50, p95
  and max, per workflow (`Entity → system/object`);
- **invoices delayed by synchronization errors**: invoices whose status cannot reach the
  systems that show it because the invoice, its account or its project has an open plan or
  write exception; each with the exception that holds it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from hub.store.base import Cursor
from projections import audit, outbound
from projections.as_of import AsOfLookup

__all__ = ["delayed_invoices", "latency"]

SAMPLE = 500
"""The latest writes of the window that latency is measured over (a bounded cost per query)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def latency(
    c: Cursor, position: int | None, when: dt.datetime, window_s: float
) -> list[dict[str, Any]]:
    """Per workflow: writes in the window and their latency p50 / p95 / max (seconds)."""
    until = (when - _EPOCH) // _MICROSECOND
    since = until - int(window_s * 1_000_000)
    per: dict[str, list[float]] = {}
    for target, obj, cid, planned, applied in outbound.applied_between(
        c, since, until, position, SAMPLE
    ):
        changed = audit.changed_at(c, cid, planned)
        if changed is None:
            continue
        workflow = f"{cid.split('/', 1)[0]} → {target}/{obj}"
        per.setdefault(workflow, []).append(max(0.0, (applied - changed) / 1_000_000))
    rows = []
    for workflow, values in sorted(per.items()):
        values.sort()
        rows.append(
            {
                "workflow": workflow,
                "writes": len(values),
                "p50_s": round(statistics.median(values), 3),
                "p95_s": round(values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], 3),
                "max_s": round(values[-1], 3),
            }
        )
    return rows


def delayed_invoices(
    lookup: AsOfLookup, open_exceptions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Invoices held up by an open plan or write exception on themselves, their account or
    their project (the records their status is written through), oldest exception first."""
    holding: dict[str, dict[str, Any]] = {}
    for e in open_exceptions:
        if e["kind"] in ("plan", "write") and e["canonical_id"]:
            holding.setdefault(e["canonical_id"], e)
    if not holding:
        return []
    rows = []
    for cid, inv in lookup.entities("Invoice"):
        related = [cid, inv.get("account_id"), inv.get("project_id")]
        found = [holding[r] for r in related if r in holding]
        if not found:
            continue
        first = min(found, key=lambda e: e["first_position"])
        rows.append(
            {
                "invoice_id": cid,
                "number": inv.get("number"),
                "status": inv.get("status"),
                "total": None if inv.get("total") is None else str(inv["total"]),
                "currency": inv.get("currency"),
                "held_by": first["canonical_id"],
                "workflow": f"{first['entity'] or '?'} → {first['system']}/{first['object']}",
                "exception": first["message"],
                "since_position": first["first_position"],
            }
        )
    return sorted(rows, key=lambda r: (r["since_position"], r["invoice_id"]))
