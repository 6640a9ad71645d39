"""The Tryton objects the source reads: for each, which records of which model, the fields
read (dotted names read a related record's field) and how a row becomes a record.

`OBJECTS` maps an object name (`parties`, `employees`, `projects`, `tasks`, `timesheet_lines`,
`invoices`, the CRM's `opportunities` and `contacts` of crm_objects.py, and the ERP's
`companies` and `periods` of accounting_objects.py, its `rates` of rate_objects.py and its
`assignments` of staffing_objects.py) to
its `TrytonObject`; `PROFILES` names the objects read by default from an ERP or a CRM
database; `TrytonObject.schema()` is its Avro record schema. Keys are
Tryton ids as text; a many-to-one field is the target's id as text; decimals are text,
durations seconds, dates ISO text. `follow` names the related records whose changes change a
record (an employee's name is its party's): the source polls them too.
"""

from __future__ import annotations

from typing import Any

from connectors.tryton.accounting_objects import ACCOUNTING_OBJECTS
from connectors.tryton.crm_objects import CRM_OBJECTS
from connectors.tryton.invoice_objects import INVOICES
from connectors.tryton.lines import split_marker
from connectors.tryton.objects_base import (
    ARCHIVED_TOO,
    Row,
    TrytonObject,
    date_text,
    decimal_text,
    first_id,
    grand,
    ref,
    related,
    seconds,
)
from connectors.tryton.rate_objects import RATE_OBJECTS
from connectors.tryton.staffing_objects import STAFFING_OBJECTS

__all__ = ["ARCHIVED_TOO", "OBJECTS", "PROFILES", "Row", "TrytonObject"]


def _root(row: Row) -> str | None:
    """The top work of a work's `path` ('12/15/'), or None for a work without a parent."""
    parts = [p for p in str(row.get("path") or "").split("/") if p]
    return parts[0] if parts and parts[0] != str(row["id"]) else None


# -- the objects ---------------------------------------------------------------------------


def _party(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "code": row["code"],
        "active": bool(row["active"]),
        "tax_identifier": related(row, "tax_identifier", "code"),
        "tax_identifier_type": related(row, "tax_identifier", "type"),
        "email": row["email"] or None,
        "phone": row["phone"] or None,
        "country": _first_country(row),
    }


def _first_country(row: Row) -> str | None:
    """The country code of the party's first address that has one (addresses by sequence)."""
    for address in row.get("addresses.") or ():
        code = related(address, "country", "code")
        if code:
            return str(code)
    return None


def _employee(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "party": ref(row["party"]),
        "name": related(row, "party", "name"),
        "code": related(row, "party", "code"),
        "company": ref(row["company"]),
        "active": bool(row["active"]),
        "start_date": date_text(row["start_date"]),
        "end_date": date_text(row["end_date"]),
    }


def _project(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "number": row["number"],
        "parent": ref(row["parent"]),
        "party": ref(row["party"]),
        "customer_code": related(row, "party", "code"),
        "company": ref(row["company"]),
        "status": related(row, "status", "name"),
        "project_invoice_method": row["project_invoice_method"],
        "list_price": decimal_text(row["list_price"]),
        "effort_duration": seconds(row["effort_duration"]),
        "timesheet_work": first_id(row["timesheet_works"]),
    }


def _task(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "number": row["number"],
        "parent": ref(row["parent"]),
        "project": _root(row),
        "project_name": related(row, "parent", "name"),
        "customer_code": grand(row, "parent", "party", "code"),
        "company": ref(row["company"]),
        "status": related(row, "status", "name"),
        "list_price": decimal_text(row["list_price"]),
        "effort_duration": seconds(row["effort_duration"]),
        "timesheet_work": first_id(row["timesheet_works"]),
        "product_code": related(row, "product", "code"),
    }


def _origin_id(value: Any, model: str) -> str | None:
    """The id in a Reference value `"model,id"` when it points at `model`, else None."""
    if not isinstance(value, str) or "," not in value:
        return None
    name, _, number = value.partition(",")
    return number if name == model and number.strip().isdigit() else None


def _timesheet_line(row: Row) -> dict[str, Any]:
    description, marker = split_marker(row["description"])
    return {
        "id": str(row["id"]),
        "employee": ref(row["employee"]),
        "date": date_text(row["date"]),
        "duration": seconds(row["duration"]),
        "work": ref(row["work"]),
        "task": _origin_id(related(row, "work", "origin"), "project.work"),
        "description": description,
        "synchub_marker": marker,
        "company": ref(row["company"]),
        "invoice_line": ref(row["invoice_line"]),
        "invoiced": row["invoice_line"] is not None,
    }


_WORK_READ = (
    "name",
    "number",
    "parent",
    "company",
    "status.name",
    "list_price",
    "effort_duration",
    "timesheet_works",
)

OBJECTS: dict[str, TrytonObject] = {
    o.name: o
    for o in (
        TrytonObject(
            "parties",
            "party.party",
            [],
            (
                "name",
                "code",
                "active",
                "tax_identifier.code",
                "tax_identifier.type",
                "email",
                "phone",
                "addresses.country.code",
            ),
            (
                ("id", "string"),
                ("name", "string?"),
                ("code", "string?"),
                ("active", "boolean"),
                ("tax_identifier", "string?"),
                ("tax_identifier_type", "string?"),
                ("email", "string?"),
                ("phone", "string?"),
                ("country", "string?"),
            ),
            _party,
            ARCHIVED_TOO,
            (
                ("contact_mechanisms", "party.contact_mechanism"),
                ("identifiers", "party.identifier"),
                ("addresses", "party.address"),
            ),
        ),
        TrytonObject(
            "employees",
            "company.employee",
            [],
            ("party", "party.name", "party.code", "company", "active", "start_date", "end_date"),
            (
                ("id", "string"),
                ("party", "string?"),
                ("name", "string?"),
                ("code", "string?"),
                ("company", "string?"),
                ("active", "boolean"),
                ("start_date", "string?"),
                ("end_date", "string?"),
            ),
            _employee,
            ARCHIVED_TOO,
            (("party", "party.party"),),
        ),
        TrytonObject(
            "projects",
            "project.work",
            [("type", "=", "project")],
            (*_WORK_READ, "party", "party.code", "project_invoice_method"),
            (
                ("id", "string"),
                ("name", "string?"),
                ("number", "string?"),
                ("parent", "string?"),
                ("party", "string?"),
                ("customer_code", "string?"),
                ("company", "string?"),
                ("status", "string?"),
                ("project_invoice_method", "string?"),
                ("list_price", "string?"),
                ("effort_duration", "double?"),
                ("timesheet_work", "string?"),
            ),
            _project,
        ),
        TrytonObject(
            "tasks",
            "project.work",
            [("type", "=", "task")],
            (*_WORK_READ, "path", "parent.name", "parent.party.code", "product.code"),
            (
                ("id", "string"),
                ("name", "string?"),
                ("number", "string?"),
                ("parent", "string?"),
                ("project", "string?"),
                ("project_name", "string?"),
                ("customer_code", "string?"),
                ("company", "string?"),
                ("status", "string?"),
                ("list_price", "string?"),
                ("effort_duration", "double?"),
                ("timesheet_work", "string?"),
                ("product_code", "string?"),
            ),
            _task,
            follow=(("parent", "project.work"),),
        ),
        TrytonObject(
            "timesheet_lines",
            "timesheet.line",
            [],
            (
                "employee",
                "date",
                "duration",
                "work",
                "work.origin",
                "description",
                "company",
                "invoice_line",
            ),
            (
                ("id", "string"),
                ("employee", "string?"),
                ("date", "string?"),
                ("duration", "double?"),
                ("work", "string?"),
                ("description", "string?"),
                ("synchub_marker", "string?"),
                ("company", "string?"),
                ("invoice_line", "string?"),
                ("invoiced", "boolean"),
                ("task", "string?"),  # the project.work the line's timesheet work is for
            ),
            _timesheet_line,
        ),
        INVOICES,
        *CRM_OBJECTS,
        *ACCOUNTING_OBJECTS,
        *RATE_OBJECTS,
        *STAFFING_OBJECTS,
    )
}
"""Every object a Tryton source can read, by name."""

PROFILES: dict[str, tuple[str, ...]] = {
    "erp": ("parties", "employees", "projects", "tasks", "timesheet_lines", "invoices"),
    "crm": ("parties", "contacts", "employees", "opportunities", "billing_notes"),
}
"""The objects a source reads by default, per kind of database (option `profile`)."""
