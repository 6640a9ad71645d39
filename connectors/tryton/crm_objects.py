"""The CRM objects of a Tryton database with `sale_opportunity`: opportunities and contacts.

- `opportunities` (`sale.opportunity`): the deal's number, description, customer (`party`),
  contact mechanism, sales representative (`employee`), legal entity (`company`), currency
  code, amount (decimal text), probability (0-1), start date, expected close (`end_date`, the
  only such field in Tryton: a won deal's is the day it was won), state (lead, opportunity,
  converted, won, lost, cancelled), service line (the code of the first line's product: the
  service sold) and lost reason.
- `contacts` (`party.contact_mechanism`): email, phone, ... of a party, archived ones too.
- `billing_notes` (`ir.attachment` with a synchub marker): the notes the CRM sink writes
  (notes.py), read back as the record they are on and the fields they show.

Parties themselves (with their tax identifier, email and country) are the `parties` object of
objects.py, shared with the ERP. Same conventions as there: keys are Tryton ids as text, a
many-to-one is the target's id as text, decimals are text, dates ISO text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.tryton.lines import split_marker
from connectors.tryton.notes import FIELDS, RESOURCES, note_fields
from connectors.tryton.objects_base import (
    ARCHIVED_TOO,
    Row,
    TrytonObject,
    date_text,
    decimal_text,
    ref,
    related,
)

__all__ = ["CRM_OBJECTS"]


def _service_line(row: Row) -> str | None:
    """The code of the product on the opportunity's first line (its lowest id)."""
    lines = [line for line in row.get("lines.") or () if isinstance(line, Mapping)]
    for line in sorted(lines, key=lambda line: int(line["id"])):
        code = related(line, "product", "code")
        if code:
            return str(code)
    return None


def _opportunity(row: Row) -> dict[str, Any]:
    probability = row["conversion_probability"]
    return {
        "id": str(row["id"]),
        "number": row["number"],
        "description": row["description"],
        "party": ref(row["party"]),
        "contact": ref(row["contact"]),
        "employee": ref(row["employee"]),
        "company": ref(row["company"]),
        "currency": related(row, "currency", "code"),
        "amount": decimal_text(row["amount"]),
        "probability": None if probability is None else float(probability),
        "start_date": date_text(row["start_date"]),
        "end_date": date_text(row["end_date"]),
        "state": row["state"],
        "service_line": _service_line(row),
        "lost_reason": row["lost_reason"],
    }


def _contact(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "party": ref(row["party"]),
        "type": row["type"],
        "value": row["value"],
        "name": row["name"],
        "active": bool(row["active"]),
    }


def _billing_note(row: Row) -> dict[str, Any]:
    model, _, number = str(row["resource"] or "").partition(",")
    shown = note_fields(row["description"])
    fields = shown[0] if shown else {name: None for name, _ in FIELDS}
    return {
        "id": str(row["id"]),
        "resource": row["resource"],
        **{name: number if model == m else None for name, m in RESOURCES.items()},
        **fields,
        "synchub_marker": shown[1] if shown else split_marker(row["description"])[1],
    }


CRM_OBJECTS: tuple[TrytonObject, ...] = (
    TrytonObject(
        "opportunities",
        "sale.opportunity",
        [],
        (
            "number",
            "description",
            "party",
            "contact",
            "employee",
            "company",
            "currency.code",
            "amount",
            "conversion_probability",
            "start_date",
            "end_date",
            "state",
            "lines.product.code",
            "lost_reason",
        ),
        (
            ("id", "string"),
            ("number", "string?"),
            ("description", "string?"),
            ("party", "string?"),
            ("contact", "string?"),
            ("employee", "string?"),
            ("company", "string?"),
            ("currency", "string?"),
            ("amount", "string?"),
            ("probability", "double?"),
            ("start_date", "string?"),
            ("end_date", "string?"),
            ("state", "string"),
            ("service_line", "string?"),
            ("lost_reason", "string?"),
        ),
        _opportunity,
    ),
    TrytonObject(
        "contacts",
        "party.contact_mechanism",
        [],
        ("party", "type", "value", "name", "active"),
        (
            ("id", "string"),
            ("party", "string?"),
            ("type", "string"),
            ("value", "string?"),
            ("name", "string?"),
            ("active", "boolean"),
        ),
        _contact,
        ARCHIVED_TOO,
    ),
    TrytonObject(
        "billing_notes",
        "ir.attachment",
        [("description", "like", "%[synchub:%")],
        ("resource", "description"),
        (
            ("id", "string"),
            ("resource", "string?"),
            *((name, "string?") for name in RESOURCES),
            *((name, "string?") for name, _ in FIELDS),
            ("synchub_marker", "string?"),
        ),
        _billing_note,
    ),
)
