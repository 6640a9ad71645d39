"""Time to billing's regional rules against real Tryton (two legal entities) and TimeTagger: the
EU entity's 10-hour day, closed accounting periods and rate cards, all read from the ERP's own
data (its companies, periods and price lists) and checked per entry before it is posted; the
US entity has no cap."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.timetagger.client import TimeTaggerClient
from connectors.timetagger.localserver import TimeTaggerServer
from hub import queries, valuation
from tests.connectors.timetagger.conftest import timetagger_python, timetagger_server  # noqa: F401
from tests.connectors.tryton.conftest import TrytonDB, tryton_db, tryton_session  # noqa: F401
from tests.integration.test_workflows import MAPPING, Firm

US, EU = 1, 2
LEGAL = '{"1": "us", "2": "eu"}'
CAP = "at most the legal entity's hours per person per day"
PERIOD = "the accounting period is open"
RATE = "the task's labor category has a rate in force on the day, in the entity's currency"


def billing_mapping() -> dict[str, Any]:
    """The demo's mapping with the ERP's companies and periods, and the regional checks."""
    doc: dict[str, Any] = yaml.safe_load(MAPPING.read_text())
    doc["entities"].update(
        {"LegalEntity": {"owner": "erp"}, "Period": {"owner": "erp"}, "RateCard": {"owner": "erp"}}
    )
    doc["sources"] += [
        {
            "system": "erp",
            "object": "companies",
            "entity": "LegalEntity",
            "id": f"id | map {LEGAL}",
            "fields": {
                "name": "name",
                "currency": "currency",
                "timezone": "timezone",
                "max_hours_per_day": 'id | map {"1": null, "2": 10} | decimal 2',  # the EU working-time cap
                "active": "true",
            },
        },
        {
            "system": "erp",
            "object": "periods",
            "entity": "Period",
            "id": "$key",
            "fields": {
                "legal_entity_id": f"company | map {LEGAL} | canonical LegalEntity",
                "name": "name",
                "valid_from": "start_date | date",
                "valid_to": "end_date | date",
                "status": 'state | map {"open": "open"} "closed"',
            },
        },
        {
            "system": "erp",
            "object": "rates",
            "entity": "RateCard",
            "id": "$key",
            "fields": {
                "legal_entity_id": f"company | map {LEGAL} | canonical LegalEntity",
                "labor_category": "product_code | lower",
                "currency": "currency",
                "hourly_rate": "rate | decimal 4",
                "valid_from": 'start_date | default "1900-01-01" | date',  # none: always
                "valid_to": "end_date | date",
                "changed_by": "changed_by",
            },
        },
    ]
    (task,) = [s for s in doc["sources"] if s["object"] == "tasks"]
    task["fields"]["labor_category"] = "product_code | lower"
    (project,) = [s for s in doc["sources"] if s["object"] == "projects"]
    project["fields"]["legal_entity_id"] = f"company | map {LEGAL} | canonical LegalEntity"
    (lines,) = [t for t in doc["targets"] if t["object"] == "timesheet_lines"]
    lines["with"] = {
        "legal": "project_id | field_of legal_entity_id",
        "cap": "legal | field_of max_hours_per_day",
        "category": "task_id | field_of labor_category",
        "currency": "legal | field_of currency",
        "rate": "date | in_force RateCard legal_entity_id {legal} labor_category {category}"
        " currency {currency}",
    }
    lines["require"][RATE] = {"when": "category | is_set", "check": "rate | is_set"}
    doc["valuations"] = [  # an entry's hours at the rate the posting checks for
        {
            "entity": "TimeEntry",
            "when": "approved",
            "with": {k: lines["with"][k] for k in ("legal", "category", "currency")},
            "hours": "minutes | div 60",
            "rate": lines["with"]["rate"],
        }
    ]
    lines["require"][PERIOD] = (
        "date | in_force Period legal_entity_id {legal} | field_of status | equals open"
    )
    lines["require"][CAP] = {
        "when": "cap | is_set",
        "check": "person_id | sum_of TimeEntry person_id minutes date {date} approved true "
        "| div 60 | le {cap}",
    }
    return doc


class TwoEntityFirm(Firm):
    """The demo firm (US) plus an EU customer, project and consultant (erik)."""

    def __init__(self, tmp: Path, erp: TrytonDB, tt: TimeTaggerServer) -> None:
        super().__init__(tmp, erp, tt)
        c = self.erp
        (product,) = c.search("product.product", [("code", "=", "CONSULT-H")])
        (erik,) = c.create("party.party", [{"name": "Erik Ek", "code": "erik"}])
        c.create("company.employee", [{"party": erik, "company": EU}])
        (customer,) = c.create("party.party", [{"name": "Initech GmbH", "code": "initech"}])
        task = {"name": "Build", "type": "task", "company": EU, "product": product}
        task |= {"list_price": Decimal(130), "timesheet_available": True}
        c.create(
            "project.work",
            [
                {
                    "name": "Data hub",
                    "type": "project",
                    "company": EU,
                    "party": customer,
                    "project_invoice_method": "timesheet",
                    "product": product,
                    "list_price": Decimal(130),
                    "children": [("create", [task])],
                }
            ],
        )
        self.rate_lists = {
            company: c.create(
                "product.price_list",
                [{"name": f"Rates {company}", "company": company, "price": "list_price"}],
            )[0]
            for company in (US, EU)
        }
        self.product = product
        today = dt.date.today()
        self.rate(US, "150", dt.date(today.year, 1, 1))
        self.rate(EU, "130", today)  # in the EU, none is in force before today
        token = tt.token(f"erik-{uuid.uuid4().hex[:6]}")
        self.tokens["erik"] = token
        self.clients["erik"] = TimeTaggerClient(tt.url, token)
        (self.tmp / "mapping.yaml").write_text(yaml.safe_dump(billing_mapping()))
        config = yaml.safe_load(self.config.read_text())
        config["connectors"]["tracker"]["accounts"] = self.tokens
        config["connectors"]["erp"]["objects"] = [
            "employees", "projects", "tasks", "timesheet_lines", "companies", "periods", "rates",
        ]  # fmt: skip
        self.config.write_text(yaml.safe_dump(config))

    def rate(self, company: int, formula: str, start: dt.date, end: dt.date | None = None) -> int:
        """A rate card line for consulting hours in `company`'s price list; → its id."""
        values = {"price_list": self.rate_lists[company], "product": self.product}
        values |= {"formula": formula, "start_date": start, "end_date": end}
        (line,) = self.erp.create("product.price_list.line", [values])
        return int(line)

    def book(self, person: str, hours: float, tag: str, day: dt.date) -> str:
        """An approved entry of `hours` on `day` (from 08:00 UTC); → its key."""
        t1 = int(dt.datetime.combine(day, dt.time(8), dt.UTC).timestamp())
        key = uuid.uuid4().hex[:12]
        record = {"key": key, "t1": t1, "t2": t1 + int(hours * 3600), "mt": t1, "st": 0.0}
        self.clients[person].put_records([{**record, "ds": f"work #{tag} #approved"}])
        return key

    def change_hours(self, person: str, key: str, hours: float) -> None:
        rec = self.records(person)[key]
        ds = rec["ds"].replace("#sync-error", "").strip()
        changed = {**rec, "t2": rec["t1"] + int(hours * 3600), "mt": rec["mt"] + 1000, "ds": ds}
        self.clients[person].put_records([changed])

    def posted(self, code: str) -> list[float]:
        """Hours of the timesheet lines of consultant `code`, sorted."""
        hours = [
            round(ln["duration"].total_seconds() / 3600, 2)
            for ln in self.lines()
            if ln["employee."]["party."]["code"] == code
        ]
        return sorted(hours)

    def move(self, person: str, key: str, days: int) -> None:
        """Move an entry `days` days (negative: earlier), unflagged."""
        rec = self.records(person)[key]
        ds = rec["ds"].replace("#sync-error", "").strip()
        shift = days * 86400
        moved = {**rec, "t1": rec["t1"] + shift, "t2": rec["t2"] + shift, "ds": ds}
        self.clients[person].put_records([{**moved, "mt": rec["mt"] + 1000}])

    def flagged(self, person: str) -> set[str]:
        return {k for k, r in self.records(person).items() if "#sync-error" in r["ds"]}

    def period_of(self, day: dt.date, company: int) -> int:
        (period,) = self.erp.search(
            "account.period",
            [
                ("company", "=", company),
                ("start_date", "<=", day),
                ("end_date", ">=", day),
                ("type", "=", "standard"),
            ],
        )
        return int(period)


@pytest.fixture
def firm(tmp_path: Path, tryton_db: TrytonDB, timetagger_server: TimeTaggerServer) -> TwoEntityFirm:  # noqa: F811
    return TwoEntityFirm(tmp_path, tryton_db, timetagger_server)


def test_the_eu_day_is_capped_at_ten_hours_and_the_us_day_is_not(firm: TwoEntityFirm) -> None:
    day = dt.date.today()
    firm.sync()
    first = firm.book("erik", 6, "initech/data-hub/build", day)
    firm.sync()
    second = firm.book("erik", 5, "initech/data-hub/build", day)  # 11 h that day in the EU
    firm.book("alice", 6, "acme/website-relaunch/build", day)
    firm.book("alice", 5.5, "acme/website-relaunch/build", day)  # 11.5 h in the US: no cap
    report = firm.sync()
    assert report.errors == []
    assert firm.posted("erik") == [6.0]
    assert firm.posted("alice") == [5.5, 6.0]
    # the day is over the cap: every entry of it is flagged for the consultant to fix the day;
    # the one posted before the day went over stays posted
    assert firm.flagged("erik") == {first, second}
    refusals = [x for x in firm.exceptions() if CAP in x["message"]]
    assert len(refusals) == 2 and all(x["kind"] == "plan" for x in refusals)
    firm.assert_idle()

    firm.change_hours("erik", second, 3)  # the consultant fixes the day: 9 h
    firm.sync()
    firm.sync()
    assert firm.posted("erik") == [3.0, 6.0]
    assert firm.flagged("erik") == set()
    assert [x for x in firm.exceptions() if CAP in x["message"]] == []
    firm.assert_idle()

    if (day - dt.timedelta(days=1)).year == day.year:  # the day before is in the fiscal year
        third = firm.book("erik", 2, "initech/data-hub/build", day)  # 11 h again
        firm.sync()
        assert firm.flagged("erik") == {first, second, third}
        before = day - dt.timedelta(days=1)
        firm.rate(EU, "125", dt.date(day.year, 1, 1), before)  # a rate is in force then too
        firm.move("erik", third, -1)  # booked on the wrong day: moved to the day before
        firm.sync()
        firm.sync()
        assert firm.posted("erik") == [2.0, 3.0, 6.0]
        assert firm.flagged("erik") == set()  # the day it left is under the cap again
        assert [x for x in firm.exceptions() if CAP in x["message"]] == []
        firm.assert_idle()


def test_a_closed_period_refuses_postings_until_it_is_reopened(firm: TwoEntityFirm) -> None:
    day = dt.date.today()
    period = firm.period_of(day, EU)
    firm.erp.button("account.period", "close", [period])
    firm.sync()
    eu = firm.book("erik", 2, "initech/data-hub/build", day)
    firm.book("alice", 2, "acme/website-relaunch/build", day)  # the US period is open
    firm.sync()
    assert firm.posted("erik") == [] and firm.posted("alice") == [2.0]
    assert firm.flagged("erik") == {eu}
    (refusal,) = [x for x in firm.exceptions() if PERIOD in x["message"]]
    assert refusal["kind"] == "plan"
    firm.assert_idle()

    firm.erp.button("account.period", "reopen", [period])  # the accountant reopens it
    firm.sync()
    firm.sync()
    assert firm.posted("erik") == [2.0]
    assert firm.flagged("erik") == set()
    assert [x for x in firm.exceptions() if PERIOD in x["message"]] == []
    firm.assert_idle()


def test_time_needs_a_rate_in_force_on_its_day_and_rate_changes_are_audited(
    firm: TwoEntityFirm,
) -> None:
    today = dt.date.today()
    yesterday = today - dt.timedelta(days=1)  # the EU rate card starts today
    if yesterday.year != today.year:
        pytest.skip("the golden ERP's fiscal year starts today: no earlier day to book")
    firm.sync()
    early = firm.book("erik", 4, "initech/data-hub/build", yesterday)
    firm.book("erik", 3, "initech/data-hub/build", today)
    firm.sync()
    assert firm.posted("erik") == [3.0]
    assert firm.flagged("erik") == {early}
    (refusal,) = [x for x in firm.exceptions() if RATE in x["message"]]
    assert refusal["kind"] == "plan"
    firm.assert_idle()

    earlier = firm.rate(EU, "125", dt.date(today.year, 1, 1), yesterday)
    firm.sync()
    firm.sync()
    assert firm.posted("erik") == [3.0, 4.0]
    assert firm.flagged("erik") == set()
    assert [x for x in firm.exceptions() if RATE in x["message"]] == []
    firm.assert_idle()

    before = firm.head()
    firm.erp.write("product.price_list.line", [earlier], {"formula": "127.50"})
    firm.sync()
    hub = firm.hub()
    try:
        changes = queries.history(hub.store, f"RateCard/{earlier}")
        now = valuation.valuations(hub.store, rate_id=f"RateCard/{earlier}")
        then = valuation.valuations(hub.store, rate_id=f"RateCard/{earlier}", position=before)
        every = valuation.valuations(hub.store)
    finally:
        hub.close()
    # the entry of the day before is valued at the earlier card: 125, then 127.50 from the fix
    assert [(r["hours"], r["value"], r["currency"]) for r in now["entries"]] == [
        ("4", "510.00", "EUR")
    ]
    assert [r["value"] for r in then["entries"]] == ["500.00"]
    assert every["totals"] == [  # today's 3 h at today's 130
        {"currency": "EUR", "entries": 2, "hours": "7", "value": "900.00"}
    ]
    rates = [(h["old"], h["new"]) for h in changes if h["field"] == "hourly_rate"]
    assert rates == [(None, "125.0000"), ("125.0000", "127.5000")]
    assert {h["new"] for h in changes if h["field"] == "changed_by"} == {"admin"}
    assert {h["new"] for h in changes if h["field"] == "valid_to"} == {yesterday.isoformat()}
    firm.assert_idle()  # a rate change does not re-post time already posted
