"""Service-level objectives on business deadlines: each configured objective (`slos:`) is
met, at risk or breached, judged from the indicators (hub.indicators) of one moment.

- `time_posted_before_cutoff`: approved time is in the ERP before the invoice cut-off of its
  legal entity. Breached when an entry approved before the last cut-off still waits; at risk
  when time waits and the next cut-off is at most `at_risk` away.
- `deal_provisioned_within`: a won deal is provisioned within `within`. Breached when one has
  waited longer; at risk when one has less than `at_risk` left.
- `exception_age`: no open exception (of `exception_kind`, or any) is older than `within`;
  at risk when the oldest has less than `at_risk` left.

Pure functions of the indicators: the same moment gives the same states (tests drive the
clock through `hub.indicators.indicators(now=...)`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.config import ObjectiveSettings
from hub.values import span

__all__ = ["AT_RISK", "BREACHED", "MET", "evaluate"]

MET, AT_RISK, BREACHED = "met", "at_risk", "breached"
MAX_RECORDS = 50


def evaluate(objectives: list[ObjectiveSettings], data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each objective's state after the indicators `data`: name, kind, state, reason, the
    records that put it at risk (at most MAX_RECORDS) and the seconds left (None when met)."""
    judge = {
        "time_posted_before_cutoff": _cutoff,
        "deal_provisioned_within": _deals,
        "exception_age": _exceptions,
    }
    out = []
    for o in objectives:
        state, reason, records, left = judge[o.kind](o, data)
        out.append(
            {
                "name": o.name,
                "kind": o.kind,
                "state": state,
                "reason": reason,
                "records": records[:MAX_RECORDS],
                "time_left_s": None if state == MET else left,
            }
        )
    return out


Verdict = tuple[str, str, list[str], int | None]


def _cutoff(o: ObjectiveSettings, data: dict[str, Any]) -> Verdict:
    rows = data["unposted_time"]["rows"]
    missed = [r for r in rows if r["oldest_missed_cutoff"]]
    if missed:
        hours = sum(float(r["hours"]) for r in missed)
        return (
            BREACHED,
            f"{hours:g} h approved before the last invoice cut-off are not in the ERP yet",
            [r["project_id"] for r in missed],
            min(_since(r["previous_cutoff"], data["as_of"]) for r in missed),
        )
    soon = [r for r in rows if r["cutoff_in_s"] <= o.at_risk]
    if soon:
        hours = sum(float(r["hours"]) for r in soon)
        left = min(r["cutoff_in_s"] for r in soon)
        return (
            AT_RISK,
            f"{hours:g} h approved are not in the ERP and the invoice cut-off is in {span(left)}",
            [r["project_id"] for r in soon],
            left,
        )
    return MET, "", [], None


def _since(cutoff: str, as_of: str) -> int:
    """Seconds from `as_of` to the (past) `cutoff`: negative, how long ago it passed."""
    return int(
        (dt.datetime.fromisoformat(cutoff) - dt.datetime.fromisoformat(as_of)).total_seconds()
    )


def _deals(o: ObjectiveSettings, data: dict[str, Any]) -> Verdict:
    deals = [d for d in data["deals_not_provisioned"] if d["won_age_s"] is not None]
    return _aged(
        o,
        [(d["opportunity_id"], int(d["won_age_s"]), 1) for d in deals],
        "won deal(s) not provisioned",
    )


def _exceptions(o: ObjectiveSettings, data: dict[str, Any]) -> Verdict:
    rows = [
        e
        for e in data["open_exceptions"]
        if e["oldest_age_s"] is not None and o.exception_kind in (None, e["kind"])
    ]
    what = f"open {o.exception_kind or ''} exception(s)".replace("  ", " ")
    aged = [(f"{e['workflow']} ({e['kind']})", int(e["oldest_age_s"]), e["count"]) for e in rows]
    return _aged(o, aged, what)


def _aged(o: ObjectiveSettings, aged: list[tuple[str, int, int]], what: str) -> Verdict:
    """Breached when one of `aged` (name, age of the oldest in seconds, how many) is older
    than `within`; at risk when one has less than `at_risk` left."""
    if not aged:
        return MET, "", [], None
    oldest = max(age for _, age, _ in aged)
    late = [(n, k) for n, age, k in aged if age >= o.within]
    if late:
        return (
            BREACHED,
            f"{sum(k for _, k in late)} {what}, the oldest {span(oldest)} old (limit "
            f"{span(int(o.within))})",
            sorted(n for n, _ in late),
            int(o.within - oldest),
        )
    close = [(n, k) for n, age, k in aged if age >= o.within - o.at_risk]
    if close:
        left = int(o.within - oldest)
        return (
            AT_RISK,
            f"{sum(k for _, k in close)} {what}, the oldest due in {span(left)}",
            sorted(n for n, _ in close),
            left,
        )
    return MET, "", [], None
