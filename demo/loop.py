"""The deal side of the demo firm's loop: its mapping (time to billing and deal to project in
one document), its rate cards and European consultant, the sales team's deals, the time
booked on the projects they become, and finance invoicing and collecting.

Used by the demo (report.py), the loop benchmark and the tests; every function works over
JSON-RPC or TimeTagger's API as the firm's people would.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import zlib
from pathlib import Path
from typing import Any

import yaml

from connectors.timetagger.client import TimeTaggerClient
from connectors.tryton.client import TrytonClient
from demo.crm import Crm
from demo.deals import mapping as deal_rules

MAPPING = Path(__file__).with_name("mapping.yaml")
ERP_COMPANIES = {"US": "Acme Consulting", "EU": "Acme Consulting EU GmbH"}
CURRENCIES = {"US": "USD", "EU": "EUR"}
RATES = {"US": "150", "EU": "135"}
"""Hourly rate of consulting (product CONSULT-H) per legal entity, in its currency."""
EU_CONSULTANTS = {"erik": "Erik Berater"}
ERP_OBJECTS = (
    "parties",
    "employees",
    "projects",
    "tasks",
    "timesheet_lines",
    "invoices",
    "rates",
    "companies",
)
"""What the ERP connector reads in the loop: the deal side adds parties, invoices and rates;
the indicators the legal entities (their currency and time zone)."""
DEALS = (  # customer, country, VAT id, deal, legal entity, service line, won in the demo
    ("Initech Inc", ("US", "United States"), None, "Cloud migration", "US", "CLOUD", True),
    ("Globex SE", ("DE", "Germany"), "DE136695976", "Data platform EU", "EU", "DATA", True),
    ("Hooli", ("US", "United States"), None, "Hooli pilot", "US", "DATA", False),
)


def companies(erp: TrytonClient) -> dict[str, int]:
    """The ERP's legal entities: code → company id."""
    return {
        e: erp.search("company.company", [("party.name", "=", name)])[0]
        for e, name in ERP_COMPANIES.items()
    }


def whole_mapping(crm: Crm, erp_companies: dict[str, int]) -> dict[str, Any]:
    """demo/mapping.yaml (time to billing) with the deal-to-project and billing-note rules of
    demo/deals.py, for these databases' company ids."""
    doc: dict[str, Any] = yaml.safe_load(MAPPING.read_text())
    deals = deal_rules(crm.company, erp_companies)
    doc["name"] = "firm"
    doc["description"] = "The firm's loop: deal to project, time to billing, invoice to CRM"
    doc["entities"] |= deals["entities"]
    doc["sources"] += deals["sources"]
    doc["targets"] += deals["targets"]
    currency = {str(i): CURRENCIES[e] for e, i in erp_companies.items()}
    entity = {str(i): e.lower() for e, i in erp_companies.items()}
    (projects,) = [s for s in doc["sources"] if s["object"] == "projects"]
    projects["fields"]["currency"] = f"company | map {json.dumps(currency)}"
    projects["fields"]["legal_entity_id"] = (
        f"company | map {json.dumps(entity)} | canonical LegalEntity"
    )
    projects["fields"]["billing_method"] = "project_invoice_method"
    doc["entities"]["LegalEntity"] = {"owner": "erp"}
    doc["sources"].append(
        {  # the legal entities: what the indicators convert to, and whose cut-off they use
            "system": "erp",
            "object": "companies",
            "entity": "LegalEntity",
            "id": f"$key | map {json.dumps(entity)}",
            "fields": {
                "name": "name",
                "currency": "currency",
                "timezone": "timezone",
                "active": "$key | is_set",
            },
        }
    )
    (invoices,) = [s for s in doc["sources"] if s["object"] == "invoices"]
    invoices["fields"]["project_id"] = "project | link Project erp projects"
    doc["targets"].append(deal_note())
    doc["valuations"] = [  # approved time at its project's hourly rate, in its currency
        {
            "entity": "TimeEntry",
            "when": "approved",
            "hours": "minutes | div 60",
            "rate": "project_id",
            "rate_field": "hourly_rate",
            "currency_field": "currency",
        }
    ]
    return doc


def deal_note() -> dict[str, Any]:
    """The billing note on a won deal: what the ERP invoiced for the project made for it
    (the project synchub provisions for a deal carries the deal's name, and the ERP's
    invoices name the project they were made from), in the currency of the last invoice."""
    project = "$key | canonical Project"
    billed = 'status ["posted", "paid"] currency {currency}'
    return {
        "system": "crm",
        "object": "billing_notes",
        "entity": "Project",
        "with": {
            "deal": "name | latest_of Opportunity name expected_close state won",
            "last": f'{project} | latest_of Invoice project_id issue_date status ["posted", "paid"]',
            "currency": "last | field_of currency",
        },
        "when": "deal | both_set {last}",  # a deal's project, invoiced
        "fields": {
            "opportunity": "deal | id_part",
            "currency": "currency",
            "invoiced": f"{project} | sum_of Invoice project_id total {billed}",
            "paid": f"{project} | sum_of Invoice project_id paid_amount {billed}",
            "outstanding": f"{project} | sum_of Invoice project_id outstanding_amount {billed}",
            "last_invoice": "last | field_of number",
            "last_invoice_date": "last | field_of issue_date",
            "next_due": f"{project} | earliest_of Invoice project_id due_date status posted"
            " | field_of due_date",
        },
    }


def seed_rates(erp: TrytonClient, erp_companies: dict[str, int]) -> None:
    """A rate card per legal entity (a price list line for consulting hours, in force from
    the first of the year), and the countries the CRM's customers are in."""
    for code, name in (("DE", "Germany"), ("US", "United States")):
        if not erp.search("country.country", [("code", "=", code)]):
            erp.create("country.country", [{"code": code, "name": name}])
    (product,) = erp.search("product.product", [("code", "=", "CONSULT-H")])
    start = dt.date(dt.date.today().year, 1, 1)
    for entity, company in erp_companies.items():
        values = {"name": f"Rates {entity}", "company": company, "price": "list_price"}
        (prices,) = erp.create("product.price_list", [values])
        line = {"price_list": prices, "product": product, "formula": RATES[entity]}
        erp.create("product.price_list.line", [line | {"start_date": start}])


def seed_consultants(erp: TrytonClient, company: int, people: dict[str, str]) -> None:
    """Employees of legal entity `company` (party code = their TimeTagger handle)."""
    for handle, name in people.items():
        (party,) = erp.create("party.party", [{"name": name, "code": handle}])
        employee = {"party": party, "company": company}
        erp.create("company.employee", [employee], context={"company": company})


def seed_deals(crm: Crm) -> dict[str, int]:
    """The sales team's customers and open deals (leads) → deal id by description."""
    deals = {}
    for customer, country, vat, deal, entity, service, _ in DEALS:
        party = crm.customer(
            customer, country=country, vat=("eu_vat", vat) if vat else None, email="ap@x.example"
        )
        deals[deal] = crm.deal(party, deal, entity=entity, service=service)
    return deals


def win_deals(crm: Crm, deals: dict[str, int]) -> list[str]:
    """Win the deals the demo wins (the others stay leads) → their descriptions."""
    won = [d for *_, d, _e, _s, wins in DEALS if wins]
    for deal in won:
        crm.win(deals[deal])
    return won


def book_on(client: TimeTaggerClient, person: str, project: str, days: int, hours: float) -> int:
    """`person` books and approves `hours` a day for `days` days (ending yesterday) on the
    tasks of `project`, found by name among the tags TimeTagger shows them."""
    tags = {s["key"].removeprefix("taginfo #"): s["value"] for s in client.settings()}
    tags = {t: v for t, v in tags.items() if isinstance(v, dict)}
    found = [t for t, v in tags.items() if v.get("name") == project and t.count("/") == 1]
    if not found:
        raise RuntimeError(f"{person} has no tag for project {project!r} in TimeTagger yet")
    tasks = sorted(t for t in tags if t.startswith(found[0] + "/"))
    today = dt.date.today()
    records = []
    for day in range(1, days + 1):
        start = dt.datetime.combine(today - dt.timedelta(days=day), dt.time(13), dt.UTC)
        t1, tag = int(start.timestamp()), tasks[day % len(tasks)]
        text = f"{tags[tag].get('name', 'work')} #{tag} #billable #approved"
        records.append({"key": f"{person}-{day}-{zlib.crc32(project.encode())}", "t1": t1})
        records[-1] |= {"t2": t1 + int(hours * 3600), "ds": text, "mt": time.time(), "st": 0.0}
    client.put_records(records)
    return len(records)


def invoice(erp: TrytonClient, project: str) -> dict[str, Any]:
    """Finance invoices project `project`'s time and posts the invoice → the invoice (id,
    number, total, currency code, company)."""
    (row,) = erp.search_read("project.work", [("name", "=", project)], ["company"])
    ctx = {"company": row["company"]}
    erp.button("project.work", "invoice", [row["id"]], context=ctx)
    drafts = erp.search(
        "account.invoice", [("company", "=", row["company"]), ("state", "=", "draft")], context=ctx
    )
    erp.button("account.invoice", "post", drafts, context=ctx)
    fields = ["number", "total_amount", "currency.code", "company", "state"]
    (posted,) = erp.read("account.invoice", drafts[-1:], fields, context=ctx)
    return posted


def pay(erp: TrytonClient, invoice_id: int, company: int) -> None:
    """Pay an invoice in full by bank transfer (Tryton's `account.invoice.pay` wizard), with a
    payment method of the company's (made on first use)."""
    ctx = {**erp.context, "company": company}
    methods = erp.search("account.invoice.payment.method", [("company", "=", company)])
    if not methods:
        (journal,) = erp.search("account.journal", [("type", "=", "cash")], limit=1)
        (cash,) = erp.search(
            "account.account", [("company", "=", company), ("code", "=", "1.1.1")], context=ctx
        )
        values = {"name": "Bank", "company": company, "journal": journal}
        values |= {"credit_account": cash, "debit_account": cash}
        methods = erp.create("account.invoice.payment.method", [values], context=ctx)
    wizard = {**ctx, "active_model": "account.invoice", "active_id": invoice_id}
    wizard["active_ids"] = [invoice_id]
    session = erp.call("wizard.account.invoice.pay.create", wizard)[0]
    try:
        form = erp.call("wizard.account.invoice.pay.execute", session, {}, "start", wizard)
        defaults = form["view"]["defaults"]
        keep = ("payee", "amount", "currency", "company", "invoice_account", "date")
        start = {k: defaults[k] for k in keep} | {"payment_method": methods[0]}
        start["description"] = "Bank transfer"
        erp.call("wizard.account.invoice.pay.execute", session, {"start": start}, "choice", wizard)
    finally:
        erp.call("wizard.account.invoice.pay.delete", session, wizard)


def billing_notes(crm: Crm) -> dict[str, str]:
    """The billing notes synchub keeps in the CRM, on customers and on deals: the customer's
    name or `deal <description>` → the note's text."""
    notes = crm.c.search_read(
        "ir.attachment", [("name", "=", "Billing (synchub)")], ["resource", "description"]
    )
    out = {}
    for note in notes:
        model, _, rid = str(note["resource"]).partition(",")
        if model == "sale.opportunity":
            (row,) = crm.c.read(model, [int(rid)], ["description"])
            out[f"deal {row['description']}"] = str(note["description"])
        else:
            (row,) = crm.c.read(model, [int(rid)], ["name"])
            out[str(row["name"])] = str(note["description"])
    return out
