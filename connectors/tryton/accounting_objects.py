"""The ERP's own structure: its legal entities and their accounting periods.

- `companies` (`company.company`): the legal entities of the database: name (its party's),
  currency code and time zone.
- `periods` (`account.period`): the accounting periods of every company's fiscal years: name
  (e.g. 2026-11), company, first and last day, type (standard or adjustment) and state (open,
  closed, locked). A time-to-billing rule refuses postings into a closed one.

Same conventions as objects.py: keys are Tryton ids as text, a many-to-one is the target's id
as text, dates ISO text.
"""

from __future__ import annotations

from typing import Any

from connectors.tryton.objects_base import Row, TrytonObject, date_text, ref, related

__all__ = ["ACCOUNTING_OBJECTS"]


def _company(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": related(row, "party", "name"),
        "party": ref(row["party"]),
        "currency": related(row, "currency", "code"),
        "timezone": row["timezone"] or None,
    }


def _period(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "company": ref(row["company"]),
        "fiscalyear": ref(row["fiscalyear"]),
        "start_date": date_text(row["start_date"]),
        "end_date": date_text(row["end_date"]),
        "type": row["type"],
        "state": row["state"],
    }


ACCOUNTING_OBJECTS = (
    TrytonObject(
        "companies",
        "company.company",
        [],
        ("party", "party.name", "currency.code", "timezone"),
        (
            ("id", "string"),
            ("name", "string?"),
            ("party", "string?"),
            ("currency", "string?"),
            ("timezone", "string?"),
        ),
        _company,
        follow=(("party", "party.party"),),
    ),
    TrytonObject(
        "periods",
        "account.period",
        [],
        ("name", "company", "fiscalyear", "start_date", "end_date", "type", "state"),
        (
            ("id", "string"),
            ("name", "string?"),
            ("company", "string?"),
            ("fiscalyear", "string?"),
            ("start_date", "string?"),
            ("end_date", "string?"),
            ("type", "string?"),
            ("state", "string?"),
        ),
        _period,
    ),
)
"""The ERP's legal entities and accounting periods, by object."""
