"""The ERP's `invoices` source object: customer invoices with their amounts, state, due date
and the project they were made from.

- `invoices` (account.invoice): type, number, party, company, state, invoice date, currency
  code, untaxed/tax/total amount and amount still to pay; `due_date`, the earliest maturity
  of its lines to pay (null when it has none, e.g. a draft); `project`, the top project.work
  its time or effort was invoiced from (Tryton's *Invoice* on a project: through the
  timesheet lines or the works the invoice lines were made for; an invoice grouping several
  projects of one customer names the first by id; null for an invoice made by hand).
"""

from __future__ import annotations

from typing import Any

from connectors.tryton.objects_base import Row, TrytonObject, date_text, decimal_text, ref, related

__all__ = ["INVOICES"]


def _invoice(row: Row) -> dict[str, Any]:
    due = [m for m in (line.get("maturity_date") for line in row.get("lines_to_pay.", ())) if m]
    return {
        "id": str(row["id"]),
        "type": row["type"],
        "number": row["number"],
        "party": ref(row["party"]),
        "company": ref(row["company"]),
        "state": row["state"],
        "invoice_date": date_text(row["invoice_date"]),
        "currency": related(row, "currency", "code"),
        "untaxed_amount": decimal_text(row["untaxed_amount"]),
        "tax_amount": decimal_text(row["tax_amount"]),
        "total_amount": decimal_text(row["total_amount"]),
        "amount_to_pay": decimal_text(row["amount_to_pay"]),
        "due_date": date_text(min(due)) if due else None,
        "project": ref(row.get("project")),
    }


def _projects(client: Any, rows: list[dict[str, Any]]) -> None:
    """Sets `project` on each invoice row: the top project of the works it invoiced."""
    ids = [int(r["id"]) for r in rows]
    if not ids:
        return
    works: dict[int, set[int]] = {}  # invoice → the project.work ids it invoiced
    for line in client.search_read(
        "timesheet.line",
        [("invoice_line.invoice", "in", ids)],
        ["invoice_line.invoice", "work.origin"],
    ):
        invoice = related(line, "invoice_line", "invoice")
        origin = related(line, "work", "origin")
        if invoice is not None and isinstance(origin, str) and origin.startswith("project.work,"):
            works.setdefault(int(invoice), set()).add(int(origin.split(",")[1]))
    for work in client.search_read(
        "project.work", [("invoice_line.invoice", "in", ids)], ["invoice_line.invoice"]
    ):
        invoice = related(work, "invoice_line", "invoice")
        if invoice is not None:
            works.setdefault(int(invoice), set()).add(int(work["id"]))
    every = sorted({w for ws in works.values() for w in ws})
    top = {
        int(w["id"]): int(str(w["path"] or w["id"]).split("/")[0])
        for w in (client.read("project.work", every, ["path"]) if every else [])
    }
    for row in rows:
        tops = sorted({top[w] for w in works.get(int(row["id"]), ()) if w in top})
        row["project"] = tops[0] if tops else None


INVOICES = TrytonObject(
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
        "lines_to_pay.maturity_date",
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
        ("due_date", "string?"),
        ("project", "string?"),
    ),
    _invoice,
    enrich=_projects,
)
