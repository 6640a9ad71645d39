"""The Tryton connector on a separate CRM database (`profile: crm`, golden_crm.py): parties with
identifiers and contact mechanisms, contacts, and opportunities through every state."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate

from connectors.tryton import TrytonConnector, TrytonNoteSink, TrytonSource
from connectors.tryton.notes import note_fields
from demo.crm import Crm
from hub.contracts.sink import SinkContract
from hub.contracts.source import SourceContract
from hub.spi import Change, ConnectorError, Delta, DeltaOp, Sink, Source
from tests.connectors.tryton.conftest import TrytonDB, TrytonSinkCase

TODAY = dt.date.today()


def crm_source(db: TrytonDB, tmp_path: Path, **options: Any) -> TrytonSource:
    return TrytonConnector("crm", db.options(profile="crm", **options), tmp_path).source()


def read(src: TrytonSource, checkpoint: Any = None) -> tuple[list[Change], Any]:
    batches = list(src.read(checkpoint, 100))
    found = [c for b in batches for c in b.changes]
    return found, (batches[-1].checkpoint if batches else checkpoint)


def latest(found: list[Change], obj: str, key: int) -> dict[str, Any]:
    """The last record captured of `obj` `key` (one must have been)."""
    records = [c.record for c in found if c.object == obj and c.key == str(key)]
    assert records, f"no change of {obj} {key} in {[(c.object, c.key) for c in found]}"
    record = records[-1]
    assert record is not None
    return dict(record)


def test_the_crm_profile_reads_parties_contacts_employees_and_opportunities(
    crm_db: TrytonDB, tmp_path: Path
) -> None:
    src = crm_source(crm_db, tmp_path)
    assert [s.object for s in src.discover()] == [
        "parties",
        "contacts",
        "employees",
        "opportunities",
        "billing_notes",
    ]
    crm = Crm(src.client)
    customer = crm.customer(
        "Globex SE",
        vat=("eu_vat", "DE136695976"),
        email="ap@globex.example",
        phone="+49 30 1234567",
        country=("DE", "Germany"),
    )
    deal = crm.deal(
        customer,
        "Data platform for Globex",
        entity="EU",
        service="DATA",
        amount=Decimal("48000.00"),
        probability=0.6,
        close=TODAY + dt.timedelta(days=45),
    )

    found, _ = read(src)
    schemas = {s.object: fastavro.parse_schema(s.schema) for s in src.discover()}
    for change in found:
        assert change.error is None, change.error
        validate(dict(change.record or {}), schemas[change.object], raise_errors=True)
    party = latest(found, "parties", customer)
    assert party == {
        "id": str(customer),
        "name": "Globex SE",
        "code": party["code"],
        "active": True,
        "tax_identifier": "DE136695976",
        "tax_identifier_type": "eu_vat",
        "email": "ap@globex.example",
        "phone": "+49 30 1234567",
        "country": "DE",
    }
    (contact_ids,) = [crm.c.read("party.party", [customer], ["contact_mechanisms"])[0]]
    email_id, phone_id = sorted(contact_ids["contact_mechanisms"])
    assert latest(found, "contacts", email_id) == {
        "id": str(email_id),
        "party": str(customer),
        "type": "email",
        "value": "ap@globex.example",
        "name": None,
        "active": True,
    }
    assert latest(found, "contacts", phone_id)["type"] == "phone"
    number = crm.read(deal, "number")["number"]
    assert latest(found, "opportunities", deal) == {
        "id": str(deal),
        "number": number,
        "description": "Data platform for Globex",
        "party": str(customer),
        "contact": None,
        "employee": str(crm.rep["EU"]),
        "company": str(crm.company["EU"]),
        "currency": "EUR",
        "amount": "48000.00",
        "probability": 0.6,
        "start_date": TODAY.isoformat(),
        "end_date": (TODAY + dt.timedelta(days=45)).isoformat(),
        "state": "lead",
        "service_line": "DATA",
        "lost_reason": None,
    }
    reps = {latest(found, "employees", crm.rep[e])["company"] for e in ("US", "EU")}
    assert reps == {str(crm.company["US"]), str(crm.company["EU"])}


def test_every_state_of_a_deal_is_captured_and_an_idle_poll_yields_nothing(
    crm_db: TrytonDB, tmp_path: Path
) -> None:
    src = crm_source(crm_db, tmp_path, objects=["opportunities"])
    crm = Crm(src.client)
    customer = crm.customer("Initech Inc", vat=("us_ein", "04-2103594"))
    won = crm.deal(customer, "Cloud migration", service="CLOUD", amount=Decimal(9000))
    lost = crm.deal(customer, "Second phase", entity="US")
    seen: list[tuple[str, str]] = []
    checkpoint: Any = None

    def poll() -> None:
        nonlocal checkpoint
        found, checkpoint = read(src, checkpoint)
        seen.extend((c.key, str((c.record or {})["state"])) for c in found)

    poll()
    crm.qualify(won)
    poll()
    crm.convert(won)
    poll()
    crm.close_sales(won)
    poll()
    crm.lose(lost, "Chose a competitor")
    poll()

    assert [s for k, s in seen if k == str(won)] == ["lead", "opportunity", "converted", "won"]
    assert [s for k, s in seen if k == str(lost)] == ["lead", "lost"]
    final, after = read(src, checkpoint)
    assert final == [], "an idle poll captures nothing"
    assert after == checkpoint
    record = {c.key: c.record for c in read(src)[0]}  # from the start: the current state
    assert record[str(won)] is not None and record[str(lost)] is not None
    assert record[str(won)]["amount"] == str(crm.read(won, "amount")["amount"])
    assert record[str(won)]["end_date"] == TODAY.isoformat()  # Tryton sets it when won
    assert record[str(lost)]["lost_reason"] == "Chose a competitor"


def test_a_contact_added_later_reaches_its_party_and_the_contacts(
    crm_db: TrytonDB, tmp_path: Path
) -> None:
    """The party's email is its contact mechanism's: adding one directly (not through the
    party) changes the party record (the source follows contact mechanisms)."""
    src = crm_source(crm_db, tmp_path, objects=["parties", "contacts"])
    crm = Crm(src.client)
    customer = crm.customer("Umbrella Corp")
    _, checkpoint = read(src)
    (contact,) = crm.c.create(
        "party.contact_mechanism",
        [{"party": customer, "type": "email", "value": "billing@umbrella.example"}],
    )
    found, _ = read(src, checkpoint)
    assert latest(found, "parties", customer)["email"] == "billing@umbrella.example"
    assert latest(found, "contacts", contact)["value"] == "billing@umbrella.example"


def test_an_unknown_profile_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    options = {"url": "http://127.0.0.1:9", "database": "crm", "password": "x", "profile": "hr"}
    with pytest.raises(ConnectorError, match="profile") as err:
        TrytonConnector("crm", options, tmp_path)
    assert "crm" in str(err.value) and "erp" in str(err.value)


class TestTrytonOpportunitySource(SourceContract):
    """opportunities: Tryton assigns the ids; only a cancelled deal can be deleted, and hard
    deletes show only in current_keys."""

    object_name = "opportunities"
    emits_deletes = False

    @pytest.fixture(autouse=True)
    def _database(self, crm_db: TrytonDB) -> None:
        self.db = crm_db

    def make_source(self, tmp_path: Path) -> Source:
        source = crm_source(self.db, tmp_path, objects=["opportunities"])
        self.crm = Crm(source.client)
        self.customer = self.crm.customer("Contract Customer")
        return source

    def write(self, object: str, key: str, record: dict[str, Any]) -> str:
        return str(self.crm.deal(self.customer, record["description"], hours=record["hours"]))

    def remove(self, object: str, key: str) -> None:
        self.crm.cancel(int(key))
        self.crm.c.delete("sale.opportunity", [int(key)])

    def sample(self, i: int) -> dict[str, Any]:
        return {"description": f"deal {i}", "hours": 8.0 * (i + 1)}


NOTE_WRITES = tuple(f"model.ir.attachment.{m}" for m in ("create", "write", "delete"))


class TestTrytonBillingNoteSink(TrytonSinkCase, SinkContract):
    """billing_notes: one note per record on a CRM opportunity, rewritten in place, read back
    through RPC and through the CRM source."""

    object_name = "billing_notes"
    entity = "Opportunity"
    profile = "crm"
    writes = NOTE_WRITES

    @pytest.fixture(autouse=True)
    def _database(self, crm_db: TrytonDB) -> None:
        self.db = crm_db

    def make_sink(self, tmp_path: Path) -> Sink:
        sink = self.open_sink(tmp_path)
        assert isinstance(sink, TrytonNoteSink)
        crm = Crm(sink.client)
        customer = crm.customer("Billing Customer")
        self.deals = [crm.deal(customer, f"deal {i}") for i in range(2)]
        self.crm = crm
        return sink

    def fields(self, i: int) -> dict[str, Any]:
        return {
            "opportunity": str(self.deals[i % 2]),
            "currency": "EUR",
            "invoiced": f"{1000 * (i + 1)}.00",
            "paid": "250.00",
            "outstanding": f"{1000 * (i + 1) - 250}.00",
            "last_invoice": f"EU2026-{i + 1:05d}",
            "last_invoice_date": TODAY.isoformat(),
        }

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        rows = self.crm.c.search_read(
            "ir.attachment", [("id", "=", int(target_key))], ["resource", "description"]
        )
        if not rows:
            return None
        shown = note_fields(rows[0]["description"])
        assert shown is not None, rows[0]["description"]
        model, _, number = rows[0]["resource"].partition(",")
        assert model == "sale.opportunity"
        return {"opportunity": number, **shown[0]}


def test_a_billing_note_is_written_for_people_and_one_per_record(
    crm_db: TrytonDB, tmp_path: Path
) -> None:
    sink = TrytonConnector("crm", crm_db.options(profile="crm"), tmp_path).sink()
    assert isinstance(sink, TrytonNoteSink)
    crm = Crm(sink.client)
    customer = crm.customer("Globex SE")
    deal = crm.deal(customer, "Data platform", entity="EU")
    crm.win(deal)

    def delta(op: DeltaOp, target: str | None, key: str, **fields: Any) -> Delta:
        return Delta("crm", "billing_notes", "Opportunity/42", target, op, fields, key)

    billing = {"opportunity": deal, "currency": "EUR", "invoiced": 9000, "paid": None}
    (created,) = sink.apply([delta("create", None, "k1", **billing)])
    assert created.status == "applied", created.reason
    (row,) = crm.c.read(
        "ir.attachment", [int(created.target_key or 0)], ["resource", "name", "description"]
    )
    assert row["resource"] == f"sale.opportunity,{deal}"
    assert row["name"] == "Billing (synchub)"
    lines = row["description"].splitlines()
    assert lines[:4] == [
        "Billing (from the ERP, kept up to date by synchub)",
        "Currency: EUR",
        "Invoiced: 9000.00",
        "Paid: -",
    ]
    assert lines[-1].startswith("[synchub:")
    # a create retried under another key (its answer was lost) finds the note: no second one
    (again,) = sink.apply([delta("create", None, "k2", **{**billing, "paid": "1500"})])
    assert again.target_key == created.target_key and again.details["existing"] is True
    assert crm.c.search("ir.attachment", [("resource", "=", f"sale.opportunity,{deal}")]) == [
        int(created.target_key or 0)
    ]
    # a person edits the note: the next update brings it back, and only the fields given change
    crm.c.write("ir.attachment", [int(created.target_key or 0)], {"description": "scribbled"})
    (updated,) = sink.apply([delta("update", created.target_key, "k3", outstanding="7500.5")])
    assert updated.status == "applied", updated.reason
    (row,) = crm.c.read("ir.attachment", [int(created.target_key or 0)], ["description"])
    shown = note_fields(row["description"])
    assert shown is not None and shown[0]["outstanding"] == "7500.50"
    (bad,) = sink.apply([delta("create", None, "k4", currency="EUR")])
    assert bad.status == "rejected" and "`opportunity`" in (bad.reason or "")


def test_a_customer_billed_in_two_currencies_shows_an_amount_per_currency(
    crm_db: TrytonDB, tmp_path: Path
) -> None:
    """Amounts per currency (as `sums_by` writes them) are shown as they are and read back as
    the same text, so a note with them is idle on the next pass; a malformed one is refused."""
    sink = TrytonConnector("crm", crm_db.options(profile="crm"), tmp_path).sink()
    crm = Crm(sink.client)
    customer = crm.customer("Initech Inc")
    both = {"party": customer, "currency": "EUR, USD", "invoiced": "2835.00 EUR; 2700.00 USD"}
    (made,) = sink.apply([Delta("crm", "billing_notes", "Account/9", None, "create", both, "k")])
    assert made.status == "applied", made.reason
    (row,) = crm.c.read("ir.attachment", [int(made.target_key or 0)], ["description"])
    assert "Invoiced: 2835.00 EUR; 2700.00 USD" in row["description"]
    shown = note_fields(row["description"])
    assert shown is not None and shown[0]["invoiced"] == "2835.00 EUR; 2700.00 USD"
    bad = {"party": customer, "invoiced": "lots of EUR"}
    (refused,) = sink.apply([Delta("crm", "billing_notes", "Account/8", None, "create", bad, "b")])
    assert refused.status == "rejected" and "amounts per currency" in (refused.reason or "")
