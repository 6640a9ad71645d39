"""The Tryton objects the source reads: for each, which records of which model, the fields
read (dotted names read a related record's field) and how a row becomes a record.

`OBJECTS` maps an object name (`parties`, `employees`, `projects`, `tasks`, `timesheet_lines`,
`invoices`) to its `TrytonObject`; `TrytonObject.schema()` is its Avro record schema. Keys are
Tryton ids as text; a many-to-one field is the target's id as text; decimals are text,
durations seconds, dates ISO text. `follow` names the related records whose changes change a
record (an employee's name is its party's): the source polls them too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors.tryton.client import Domain
from connectors.tryton.lines import split_marker
from hub.spi import ObjectSchema

__all__ = ["ARCHIVED_TOO", "OBJECTS", "Row", "TrytonObject"]

ARCHIVED_TOO = {"active_test": False}
"""The context that reads archived (inactive) records too."""

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TrytonObject:
    """One source object: which records of which model, and how a row becomes a record.

    `fields` are the Avro fields (name, type) of the record, in order; `read` the Tryton field
    names to read (dotted `party.name` reads a related record's field). `follow` lists the
    (path, model) of the related records whose changes change the record (`("party",
    "party.party")` for `party.name`): their stamps are polled too.
    """

    name: str
    model: str
    domain: Domain
    read: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]
    convert: Callable[[Row], dict[str, Any]]
    context: Mapping[str, Any] = field(default_factory=dict)
    follow: tuple[tuple[str, str], ...] = ()

    def schema(self) -> ObjectSchema:
        avro = []
        for name, kind in self.fields:
            if kind.endswith("?"):
                avro.append({"name": name, "type": ["null", kind[:-1]], "default": None})
            else:
                avro.append({"name": name, "type": kind})
        record = {"type": "record", "name": f"tryton_{self.name}", "fields": avro}
        return ObjectSchema(object=self.name, key_field="id", schema=record)


# -- value conversions ---------------------------------------------------------------------


def _ref(value: Any) -> str | None:
    """A many-to-one id as text (None stays None)."""
    return None if value is None else str(value)


def _decimal(value: Any) -> str | None:
    return None if value is None else str(Decimal(value))


def _date(value: Any) -> str | None:
    return None if value is None else dt.date.isoformat(value)


def _seconds(value: Any) -> float | None:
    return None if value is None else float(dt.timedelta.total_seconds(value))


def _related(row: Row, name: str, attr: str) -> Any:
    """`attr` of the related record read as `name.attr` (Tryton answers `{name.: {...}}`)."""
    related = row.get(f"{name}.")
    return related.get(attr) if isinstance(related, Mapping) else None


def _grand(row: Row, name: str, via: str, attr: str) -> Any:
    """`attr` of the record related to the related one, read as `name.via.attr`."""
    related = row.get(f"{name}.")
    inner = related.get(f"{via}.") if isinstance(related, Mapping) else None
    return inner.get(attr) if isinstance(inner, Mapping) else None


def _first(values: Any) -> str | None:
    return str(values[0]) if values else None


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
    }


def _employee(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "party": _ref(row["party"]),
        "name": _related(row, "party", "name"),
        "code": _related(row, "party", "code"),
        "company": _ref(row["company"]),
        "active": bool(row["active"]),
        "start_date": _date(row["start_date"]),
        "end_date": _date(row["end_date"]),
    }


def _project(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "number": row["number"],
        "parent": _ref(row["parent"]),
        "party": _ref(row["party"]),
        "customer_code": _related(row, "party", "code"),
        "company": _ref(row["company"]),
        "status": _related(row, "status", "name"),
        "project_invoice_method": row["project_invoice_method"],
        "list_price": _decimal(row["list_price"]),
        "effort_duration": _seconds(row["effort_duration"]),
        "timesheet_work": _first(row["timesheet_works"]),
    }


def _task(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "number": row["number"],
        "parent": _ref(row["parent"]),
        "project": _root(row),
        "project_name": _related(row, "parent", "name"),
        "customer_code": _grand(row, "parent", "party", "code"),
        "company": _ref(row["company"]),
        "status": _related(row, "status", "name"),
        "list_price": _decimal(row["list_price"]),
        "effort_duration": _seconds(row["effort_duration"]),
        "timesheet_work": _first(row["timesheet_works"]),
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
        "employee": _ref(row["employee"]),
        "date": _date(row["date"]),
        "duration": _seconds(row["duration"]),
        "work": _ref(row["work"]),
        "task": _origin_id(_related(row, "work", "origin"), "project.work"),
        "description": description,
        "synchub_marker": marker,
        "company": _ref(row["company"]),
        "invoice_line": _ref(row["invoice_line"]),
        "invoiced": row["invoice_line"] is not None,
    }


def _invoice(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "type": row["type"],
        "number": row["number"],
        "party": _ref(row["party"]),
        "company": _ref(row["company"]),
        "state": row["state"],
        "invoice_date": _date(row["invoice_date"]),
        "currency": _related(row, "currency", "code"),
        "untaxed_amount": _decimal(row["untaxed_amount"]),
        "tax_amount": _decimal(row["tax_amount"]),
        "total_amount": _decimal(row["total_amount"]),
        "amount_to_pay": _decimal(row["amount_to_pay"]),
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
            ("name", "code", "active"),
            (("id", "string"), ("name", "string?"), ("code", "string?"), ("active", "boolean")),
            _party,
            ARCHIVED_TOO,
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
            (*_WORK_READ, "path", "parent.name", "parent.party.code"),
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
        TrytonObject(
            "invoices",
            "account.invoice",
            [],
            (
                "type",
                "number",
                "party",
                "company",
                "state",
                "invoice_date",
                "currency.code",
                "untaxed_amount",
                "tax_amount",
                "total_amount",
                "amount_to_pay",
            ),
            (
                ("id", "string"),
                ("type", "string"),
                ("number", "string?"),
                ("party", "string?"),
                ("company", "string?"),
                ("state", "string"),
                ("invoice_date", "string?"),
                ("currency", "string?"),
                ("untaxed_amount", "string?"),
                ("tax_amount", "string?"),
                ("total_amount", "string?"),
                ("amount_to_pay", "string?"),
            ),
            _invoice,
        ),
    )
}
