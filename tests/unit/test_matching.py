"""`match` on a target rule: before creating, adopt the one existing target record that equals
the desired one on a rule's fields; several, or one that is another entity's already, is an
exception (never a guess); none, a create."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hub import queries
from hub.config import OutboundSettings, Settings, StoreSettings
from hub.engine import Hub
from hub.errors import MappingSpecError
from hub.mapping import Mapping
from hub.outbound.matching import normalised
from hub.testing import MemorySink, MemorySource, Wired
from hub.types import ObjectSchema


def schema(name: str, *fields: str) -> ObjectSchema:
    return ObjectSchema(
        name,
        fields[0],
        {
            "type": "record",
            "name": name,
            "fields": [{"name": f, "type": ["null", "string"], "default": None} for f in fields],
        },
    )


CUSTOMERS = schema("customers", "code", "name", "country", "vat")
PARTIES = schema("parties", "id", "name", "country", "vat")
MAPPING: dict[str, Any] = {
    "name": "customers",
    "entities": {"Account": {"owner": "crm"}},
    "sources": [
        {
            "system": "crm",
            "object": "customers",
            "entity": "Account",
            "id": "code",
            "fields": {"name": "name", "country": "country", "vat_id": "vat", "active": "true"},
        }
    ],
    "targets": [
        {
            "system": "erp",
            "object": "parties",
            "entity": "Account",
            "match": [["vat"], ["name", "country"]],
            "fields": {"name": "name", "country": "country", "vat": "vat_id"},
        }
    ],
}


class Firm:
    """A CRM whose customers the ERP must hold; the ERP's parties are captured (not mapped)."""

    def __init__(self, tmp: Path) -> None:
        (tmp / "mapping.yaml").write_text(yaml.safe_dump(MAPPING))
        self.crm = MemorySource("crm", {"customers": CUSTOMERS})
        self.erp_parties = MemorySource("erp", {"parties": PARTIES})
        self.erp = MemorySink("erp")
        settings = Settings(
            store=StoreSettings(path=str(tmp / "hub.db")),
            mapping="mapping.yaml",
            base_dir=tmp,
            outbound=OutboundSettings(base_delay=0.01, max_delay=0.05, max_wait=2),
        )
        self.hub = Hub(settings, {"crm": Wired(self.crm), "erp": Wired(self.erp_parties, self.erp)})

    def customer(self, code: str, name: str, country: str | None, vat: str | None) -> None:
        record = {"code": code, "name": name, "country": country, "vat": vat}
        self.crm.put("customers", code, record)

    def party(self, key: str, name: str, country: str | None, vat: str | None) -> None:
        record = {"id": key, "name": name, "country": country, "vat": vat}
        self.erp_parties.put("parties", key, record)

    def writes(self) -> list[tuple[str, str | None, dict[str, Any]]]:
        return [(d.op, d.target_key, dict(d.fields)) for _, d in self.erp.applied.values()]

    def plan_exceptions(self) -> list[dict[str, Any]]:
        return [x for x in queries.exceptions(self.hub.store, "open") if x["kind"] == "plan"]

    def idle(self) -> None:
        for _ in range(3):
            head = self.hub.store.head()
            report = self.hub.sync_once()
            assert report.planned.planned == 0 and report.executed.attempted == 0
            assert self.hub.store.head() == head


@pytest.fixture
def firm(tmp_path: Path) -> Firm:
    f = Firm(tmp_path)
    yield f
    f.hub.close()


def test_an_existing_record_is_adopted_by_tax_id_then_by_name_and_country(firm: Firm) -> None:
    firm.party("P1", "ACME Corp.", "DE", "DE1")
    firm.party("P2", "Globex  S.A.", "FR", None)
    firm.customer("acme", "Acme Corp", "DE", "de1")  # same VAT (case aside): P1
    firm.customer("globex", "globex sa", "FR", None)  # no VAT: same name and country, P2
    firm.customer("initech", "Initech", "US", "US9")  # nothing like it: created
    firm.hub.sync_once()
    writes = {w[1] or f"new:{w[2]['name']}": w for w in firm.writes()}
    assert writes["P1"] == ("update", "P1", {"name": "Acme Corp", "vat": "de1"})
    assert writes["P2"] == ("update", "P2", {"name": "globex sa"})
    assert writes["new:Initech"][0] == "create"
    links = {
        cid: [(ln["system"], ln["key"]) for ln in queries.state(firm.hub.store, cid)["links"]]
        for cid in ("Account/acme", "Account/globex")
    }
    assert ("erp", "P1") in links["Account/acme"] and ("erp", "P2") in links["Account/globex"]
    assert firm.plan_exceptions() == []
    firm.idle()


def test_an_adopted_record_that_already_holds_everything_is_still_linked(firm: Firm) -> None:
    firm.party("P1", "Acme Corp", "DE", "DE1")
    firm.customer("acme", "Acme Corp", "DE", "DE1")
    firm.hub.sync_once()
    assert firm.writes() == [("update", "P1", {})]
    state = queries.state(firm.hub.store, "Account/acme")
    assert ("erp", "P1", "target") in {
        (ln["system"], ln["key"], ln["role"]) for ln in state["links"]
    }
    firm.idle()


def test_several_matches_are_an_exception_until_the_duplicates_are_merged(firm: Firm) -> None:
    firm.party("P1", "Acme Corp", "DE", "DE1")
    firm.party("P7", "ACME Corporation", "DE", "DE1")
    firm.customer("acme", "Acme Corp", "DE", "DE1")
    firm.hub.sync_once()
    assert firm.writes() == []  # never a guess
    (x,) = firm.plan_exceptions()
    assert "records P1, P7 all match it" in x["message"] and "on vat" in x["message"]
    firm.idle()  # open already: nothing again
    firm.erp_parties.delete("parties", "P7")  # merged in the ERP
    firm.hub.sync_once()
    assert firm.writes() == [("update", "P1", {})]
    assert firm.plan_exceptions() == []


def test_a_match_that_is_another_entity_already_is_an_exception(firm: Firm) -> None:
    firm.party("P1", "Acme Corp", "DE", None)
    firm.customer("acme", "Acme Corp", "DE", None)
    firm.hub.sync_once()  # acme adopts P1
    firm.customer("acme2", "ACME corp.", "DE", None)  # a duplicate in the CRM
    firm.hub.sync_once()
    (x,) = firm.plan_exceptions()
    assert "record P1 matches it but is Account/acme already" in x["message"]
    assert [w for w in firm.writes() if w[0] == "create"] == []


def test_match_rules_name_the_rules_fields() -> None:
    bad: dict[str, Any] = {**MAPPING, "targets": [{**MAPPING["targets"][0], "match": [["vat_id"]]}]}
    with pytest.raises(
        MappingSpecError, match=r"targets\[0\]\.match\[0\]: 'vat_id' is not a field"
    ):
        Mapping.from_dict(bad)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ACME  Corp.", "acme corp"),
        ("Müller GmbH", "MÜLLER gmbh"),
        ("DE-136.695", "de136695"),
        ("Globex  S.A.", "globex sa"),
    ],
)
def test_values_are_compared_normalised(a: str, b: str) -> None:
    assert normalised(a) == normalised(b) is not None
    assert normalised("") is None and normalised("  .. ") is None and normalised(None) is None
