"""Deal to project on real Tryton databases (a CRM and a two-entity ERP on the session's server):
a deal won in the CRM makes its customer an ERP customer (the existing one adopted by tax
identifier, never duplicated; a new one created) and a project with the tasks of its service
line in the deal's legal entity, priced at the rate card in force on its start date; prospects
and open deals stay in the CRM."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo.crm import Crm
from demo.deals import RATED, TASKS, mapping
from demo.loop import pay
from hub import queries
from hub.config import load_settings
from hub.engine import Hub
from tests.connectors.tryton.conftest import (  # noqa: F401
    Erp,
    TrytonDB,
    crm_db,
    crm_golden,
    tryton_db,
    tryton_session,
)


class Loop:
    def __init__(self, tmp: Path, crm_database: TrytonDB, erp_database: TrytonDB) -> None:
        self.crm = Crm(crm_database.client())
        self.erp = erp_database.client()
        for code, name in (("DE", "Germany"), ("US", "United States")):
            if not self.erp.search("country.country", [("code", "=", code)]):
                self.erp.create("country.country", [{"code": code, "name": name}])
        erp_companies = {
            "US": self.erp.search("company.company", [("party.name", "=", "Acme Consulting")])[0],
            "EU": self.erp.search(
                "company.company", [("party.name", "=", "Acme Consulting EU GmbH")]
            )[0],
        }
        self.erp_companies = erp_companies
        (self.product,) = self.erp.search("product.product", [("code", "=", "CONSULT-H")])
        self.rate_lists = {
            entity: self.erp.create(
                "product.price_list",
                [{"name": f"Rates {entity}", "company": company, "price": "list_price"}],
            )[0]
            for entity, company in erp_companies.items()
        }
        self.config = tmp / "synchub.yaml"
        (tmp / "mapping.yaml").write_text(
            yaml.safe_dump(  # cloud migrations at a fixed price, data platforms on time
                mapping(self.crm.company, erp_companies, {"DATA": "timesheet", "CLOUD": "effort"}),
                sort_keys=False,
            )
        )
        self.config.write_text(
            yaml.safe_dump(
                {
                    "store": {"path": "./synchub.db"},
                    "mapping": "./mapping.yaml",
                    "connectors": {
                        "crm": {
                            "type": "tryton",
                            "profile": "crm",
                            **crm_database.options(),
                            "lag": 60,
                        },
                        "erp": {
                            "type": "tryton",
                            **erp_database.options(),
                            "objects": ["parties", "projects", "tasks", "invoices", "rates"],
                            "lag": 60,
                        },
                    },
                    "ingest": {"reconcile_every": 0},
                    "outbound": {"max_wait": 5, "base_delay": 0.05},
                }
            )
        )

    def rate(self, entity: str, formula: str, start: dt.date, end: dt.date | None = None) -> None:
        """A rate card line for consulting hours in legal entity `entity`."""
        values = {"price_list": self.rate_lists[entity], "product": self.product}
        values |= {"formula": formula, "start_date": start, "end_date": end}
        self.erp.create("product.price_list.line", [values])

    def sync(self) -> Any:
        hub = Hub(load_settings(self.config))
        try:
            return hub.sync_once()
        finally:
            hub.close()

    def head(self) -> int:
        hub = Hub(load_settings(self.config))
        try:
            return hub.store.head()
        finally:
            hub.close()

    def exceptions(self) -> list[dict[str, Any]]:
        hub = Hub(load_settings(self.config))
        try:
            hub.projector.catch_up()
            return queries.exceptions(hub.store)
        finally:
            hub.close()

    def assert_idle(self, passes: int = 3) -> None:
        for n in range(passes):
            before = self.head()
            report = self.sync()
            assert report.errors == [], report.errors
            assert report.planned.planned == 0, f"idle pass {n + 1} planned writes"
            assert report.executed.attempted == 0, f"idle pass {n + 1} wrote"
            assert self.head() == before, f"idle pass {n + 1} appended events"

    def projects(self) -> dict[str, dict[str, Any]]:
        rows = self.erp.search_read(
            "project.work",
            [("type", "=", "project")],
            ["name", "party", "company", "children", "list_price", "project_invoice_method"],
        )
        out = {}
        for row in rows:
            tasks = self.erp.read("project.work", row["children"], ["name"])
            out[row["name"]] = {**row, "tasks": sorted(t["name"] for t in tasks)}
        return out


@pytest.fixture
def loop(tmp_path: Path, crm_db: TrytonDB, tryton_db: TrytonDB) -> Loop:  # noqa: F811
    return Loop(tmp_path, crm_db, tryton_db)


def provision(loop: Loop) -> dict[str, int]:
    """Customers and deals in the CRM, one customer already in the ERP, the EU's rate card (the
    US has none yet); Globex's EU deal and Initech's US deal won, Hooli's a lead; synced until
    settled. → ids by name."""
    crm, erp = loop.crm, loop.erp
    loop.rate("EU", "135", dt.date(dt.date.today().year, 1, 1))
    (known,) = erp.create(  # a customer the ERP has had for years
        "party.party",
        [
            {
                "name": "GLOBEX SE",
                "identifiers": [("create", [{"type": "eu_vat", "code": "DE136695976"}])],
            }
        ],
    )
    globex = crm.customer("Globex SE", vat=("eu_vat", "DE136695976"), country=("DE", "Germany"))
    initech = crm.customer("Initech Inc", country=("US", "United States"))
    hooli = crm.customer("Hooli", country=("US", "United States"))
    data = crm.deal(globex, "Data platform for Globex", entity="EU", service="DATA")
    cloud = crm.deal(initech, "Cloud migration for Initech", entity="US", service="CLOUD")
    crm.deal(hooli, "Hooli pilot", entity="US", service="DATA")  # stays a lead
    crm.win(data)
    crm.win(cloud)
    for _ in range(3):  # customers first, then the projects that name them
        report = loop.sync()
        assert report.errors == [], report.errors
        # a project waiting for its customer to be written waits quietly: no exception
        waiting = [x for x in loop.exceptions() if "has no record for" in x["message"]]
        assert waiting == [], waiting
    return {"known": known, "globex": globex, "initech": initech, "hooli": hooli}


def test_a_won_deal_becomes_an_erp_customer_and_a_project_with_its_tasks(loop: Loop) -> None:
    ids = provision(loop)
    erp = loop.erp
    parties = erp.search_read("party.party", [], ["name"])
    names = [p["name"] for p in parties]
    assert names.count("GLOBEX SE") + names.count("Globex SE") == 1, names  # adopted
    assert "Initech Inc" in names and "Hooli" not in names
    projects = loop.projects()
    assert set(projects) == {"Data platform for Globex"}  # no US rate card yet
    eu, us = loop.erp_companies["EU"], loop.erp_companies["US"]
    globex_project = projects["Data platform for Globex"]
    assert globex_project["party"] == ids["known"] and globex_project["company"] == eu
    assert globex_project["tasks"] == sorted(TASKS["DATA"])
    assert str(globex_project["list_price"]) == "135.0000"
    assert globex_project["project_invoice_method"] == "timesheet"
    (missing,) = [x for x in loop.exceptions() if RATED in x["message"]]
    assert missing["kind"] == "plan"
    loop.assert_idle()

    today = dt.date.today()  # the US rate card: the deal was won today, at 160
    loop.rate("US", "150", dt.date(today.year, 1, 1), today - dt.timedelta(days=1))
    loop.rate("US", "160", today)
    loop.sync()
    loop.sync()
    cloud_project = loop.projects()["Cloud migration for Initech"]
    assert cloud_project["company"] == us and cloud_project["tasks"] == sorted(TASKS["CLOUD"])
    assert str(cloud_project["list_price"]) == "160.0000"
    assert cloud_project["project_invoice_method"] == "effort"  # a fixed price
    assert [x for x in loop.exceptions() if x["status"] == "open"] == []
    loop.assert_idle()


def test_an_ambiguous_customer_is_an_exception_and_its_project_says_what_it_waits_for(
    loop: Loop,
) -> None:
    """Two ERP customers match the deal's customer: a person decides (never a guess), and the
    project, with no customer to name, is an exception too — not a silent wait."""
    erp = loop.erp
    (de,) = erp.search("country.country", [("code", "=", "DE")])
    twin = {"name": "Umbrella GmbH", "addresses": [("create", [{"country": de}])]}
    erp.create("party.party", [twin, twin])
    umbrella = loop.crm.customer("Umbrella GmbH", country=("DE", "Germany"))
    loop.rate("EU", "135", dt.date(dt.date.today().year, 1, 1))
    deal = loop.crm.deal(umbrella, "Umbrella analytics", entity="EU", service="DATA")
    loop.crm.win(deal)
    for _ in range(2):
        assert loop.sync().errors == []
    open_ = loop.exceptions()
    (ambiguous,) = [x for x in open_ if "all match it" in x["message"]]
    assert ambiguous["kind"] == "plan" and ambiguous["object"] == "parties"
    (waiting,) = [x for x in open_ if "has no record for" in x["message"]]
    assert waiting["kind"] == "plan" and waiting["object"] == "projects"
    assert "Umbrella analytics" not in loop.projects()
    loop.assert_idle()


def note_on(loop: Loop, party: int) -> str:
    """The text of the one billing note on CRM party `party` (fails if none or several)."""
    notes = loop.crm.c.search_read(
        "ir.attachment", [("resource", "=", f"party.party,{party}")], ["name", "description"]
    )
    assert [n["name"] for n in notes] == ["Billing (synchub)"], [
        x["message"] for x in loop.exceptions()
    ]
    return str(notes[0]["description"])


def test_an_invoice_posted_in_the_erp_shows_on_the_crm_customer(loop: Loop) -> None:
    ids = provision(loop)
    erp, eu = loop.erp, loop.erp_companies["EU"]
    ctx = {"company": eu}
    project = loop.projects()["Data platform for Globex"]
    (party,) = erp.create("party.party", [{"name": "Eva Berater"}], context=ctx)
    (employee,) = erp.create("company.employee", [{"party": party, "company": eu}], context=ctx)
    (task,) = erp.search("project.work", [("parent", "=", project["id"]), ("name", "=", "Build")])
    (work,) = erp.read("project.work", [task], ["timesheet_works"])[0]["timesheet_works"]

    erp.create(
        "timesheet.line",
        [
            {
                "employee": employee,
                "work": work,
                "company": eu,
                "date": dt.date.today(),
                "duration": dt.timedelta(hours=8),
            }
        ],
        context=ctx,
    )
    erp.button("project.work", "invoice", [project["id"]], context=ctx)
    invoices = erp.search("account.invoice", [("company", "=", eu)], context=ctx)
    erp.button("account.invoice", "post", invoices, context=ctx)
    (posted,) = erp.read(
        "account.invoice",
        invoices,
        ["state", "total_amount", "number", "invoice_date", "lines_to_pay.maturity_date"],
        context=ctx,
    )
    assert posted["state"] == "posted"
    due = min(line["maturity_date"] for line in posted["lines_to_pay."])
    for _ in range(2):
        assert loop.sync().errors == []
    text = note_on(loop, ids["globex"])
    total = f"{posted['total_amount']:.2f}"
    assert f"Invoiced: {total}" in text and f"Outstanding: {total}" in text, text
    assert "Currency: EUR" in text and "Paid: 0.00" in text, text
    assert f"Last invoice: {posted['number']}" in text, text
    assert f"Last invoice date: {posted['invoice_date'].isoformat()}" in text, text
    assert f"Next due: {due.isoformat()}" in text, text  # unpaid, due then
    others = loop.crm.c.search("ir.attachment", [("resource", "like", "party.party,%")])
    assert len(others) == 1  # only the invoiced customer has a note
    loop.assert_idle()

    pay(erp, posted["id"], eu)  # the customer pays: the note is updated in place
    (paid,) = erp.read("account.invoice", [posted["id"]], ["state"], context=ctx)
    assert paid["state"] == "paid"
    for _ in range(2):
        assert loop.sync().errors == []
    text = note_on(loop, ids["globex"])  # still one note
    assert f"Paid: {total}" in text and "Outstanding: 0.00" in text, text
    assert f"Invoiced: {total}" in text, text
    assert "Next due: -" in text, text  # nothing left to pay
    loop.assert_idle()


def test_a_deal_reopened_after_provisioning_is_an_exception_never_undone(loop: Loop) -> None:
    """The customer reopens the deal after its project was made (a second order is quoted:
    Tryton turns the deal from won back to converted). synchub undoes nothing: one `plan`
    exception on the project, for a person to decide. The deal won again settles it."""
    ids = provision(loop)
    crm = loop.crm
    (deal,) = crm.c.search("sale.opportunity", [("description", "=", "Data platform for Globex")])
    (sale,) = crm.read(deal, "sales")["sales"]
    (extra,) = crm.c.model("sale.sale", "copy", [sale], {}, context=crm.ctx("EU"))
    crm.act("sale.sale", "quote", [extra], "EU")
    assert crm.state(deal) == "converted"  # reopened
    for _ in range(2):
        assert loop.sync().errors == []
    (reopened,) = [x for x in loop.exceptions() if "was written for it" in x["message"]]
    assert reopened["kind"] == "plan" and reopened["object"] == "projects", reopened
    assert reopened["canonical_id"] == f"Opportunity/{deal}", reopened
    project = loop.projects()["Data platform for Globex"]  # nothing undone
    assert project["party"] == ids["known"] and project["tasks"] == sorted(TASKS["DATA"])
    loop.assert_idle()

    crm.act("sale.sale", "cancel", [extra], "EU")  # the extra order is dropped: won again
    assert crm.state(deal) == "won"
    for _ in range(2):
        assert loop.sync().errors == []
    assert [x for x in loop.exceptions() if "was written for it" in x["message"]] == []
    assert list(loop.projects()).count("Data platform for Globex") == 1
    loop.assert_idle()


def test_a_customer_billed_by_both_legal_entities_sees_each_currency_apart(loop: Loop) -> None:
    """Globex's EU project is invoiced in EUR and a US project of theirs in USD: the customer's
    note shows each amount in its own currency, never added across, and stays idle."""
    ids = provision(loop)
    erp, eu = loop.erp, loop.erp_companies["EU"]
    ctx = {"company": eu}
    eu_project = loop.projects()["Data platform for Globex"]
    (party,) = erp.create("party.party", [{"name": "Eva Berater"}], context=ctx)
    (eva,) = erp.create("company.employee", [{"party": party, "company": eu}], context=ctx)
    (build,) = erp.search(
        "project.work", [("parent", "=", eu_project["id"]), ("name", "=", "Build")]
    )
    us = Erp(erp)  # the login's company: the US entity
    us_project, (support,) = us.project(ids["known"], ("Support",), name="Globex US support")
    us.line(us.employee("Sam Support"), us.timesheet_work(support), 4)
    line = {"employee": eva, "work": us.timesheet_work(build), "company": eu}
    erp.create("timesheet.line", [line | {"duration": dt.timedelta(hours=8)}], context=ctx)
    totals = {}
    for project, company in ((eu_project["id"], eu), (us_project, us.company)):
        company_ctx = {"company": company}
        erp.button("project.work", "invoice", [project], context=company_ctx)
        drafts = erp.search(
            "account.invoice",
            [("company", "=", company), ("state", "=", "draft")],
            context=company_ctx,
        )
        erp.button("account.invoice", "post", drafts, context=company_ctx)
        (posted,) = erp.read(
            "account.invoice", drafts, ["total_amount", "currency.code"], context=company_ctx
        )
        totals[posted["currency."]["code"]] = f"{posted['total_amount']:.2f}"
    for _ in range(2):
        assert loop.sync().errors == []
    text = note_on(loop, ids["globex"])
    assert f"Invoiced: {totals['EUR']} EUR; {totals['USD']} USD" in text, text
    assert f"Outstanding: {totals['EUR']} EUR; {totals['USD']} USD" in text, text
    assert "Currency: EUR, USD" in text, text
    loop.assert_idle()
