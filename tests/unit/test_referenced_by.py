"""`referenced_by` in a target rule: an Account is written to the ERP once one of its deals is
won, and is planned again whenever a deal that names it changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub import queries
from hub.config import OutboundSettings, Settings, StoreSettings
from hub.engine import Hub
from hub.testing import MemorySink, MemorySource, Wired
from tests.unit.test_matching import CUSTOMERS, MAPPING, schema

DEALS = schema("deals", "id", "customer", "state")


def mapping() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(MAPPING))
    doc["entities"]["Opportunity"] = {"owner": "crm"}
    doc["sources"].append(
        {
            "system": "crm",
            "object": "deals",
            "entity": "Opportunity",
            "id": "id",
            "fields": {
                "name": "id",
                "state": "state",
                "account_id": "customer | link Account crm customers",
            },
        }
    )
    doc["targets"][0]["when"] = (
        "$key | canonical Account | referenced_by Opportunity account_id state won | gt 0"
    )
    doc["targets"][0]["unwanted"] = "keep"
    return doc


@pytest.fixture
def firm(tmp_path: Path) -> Any:
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping()))
    crm = MemorySource("crm", {"customers": CUSTOMERS, "deals": DEALS})
    erp = MemorySink("erp")
    settings = Settings(
        store=StoreSettings(path=str(tmp_path / "hub.db")),
        mapping="mapping.yaml",
        base_dir=tmp_path,
        outbound=OutboundSettings(base_delay=0.01, max_delay=0.05, max_wait=2),
    )
    hub = Hub(settings, {"crm": Wired(crm), "erp": Wired(None, erp)})
    yield hub, crm, erp
    hub.close()


def test_a_customer_reaches_the_erp_when_a_deal_of_its_is_won(firm: Any) -> None:
    hub, crm, erp = firm
    crm.put("customers", "acme", {"code": "acme", "name": "Acme", "country": "DE", "vat": "DE1"})
    crm.put("customers", "hooli", {"code": "hooli", "name": "Hooli", "country": "US", "vat": None})
    crm.put("deals", "D1", {"id": "D1", "customer": "acme", "state": "opportunity"})
    crm.put("deals", "D2", {"id": "D2", "customer": "hooli", "state": "lost"})
    hub.sync_once()
    assert erp.records == {}  # prospects stay in the CRM
    crm.put("deals", "D1", {"id": "D1", "customer": "acme", "state": "won"})  # only the deal
    hub.sync_once()
    assert list(erp.records.values()) == [{"name": "Acme", "country": "DE", "vat": "DE1"}]
    for _ in range(3):  # idle
        head = hub.store.head()
        report = hub.sync_once()
        assert report.planned.planned == 0 and hub.store.head() == head
    assert queries.exceptions(hub.store, "open") == []


def test_referenced_by_in_a_source_rule_is_a_mapping_exception_saying_why(
    tmp_path: Path,
) -> None:
    doc = mapping()
    doc["sources"][0]["fields"]["active"] = (
        "code | canonical Account | referenced_by Opportunity account_id | gt 0"
    )
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(doc))
    crm = MemorySource("crm", {"customers": CUSTOMERS, "deals": DEALS})
    settings = Settings(
        store=StoreSettings(path=str(tmp_path / "hub.db")),
        mapping="mapping.yaml",
        base_dir=tmp_path,
    )
    hub = Hub(settings, {"crm": Wired(crm), "erp": Wired(None, MemorySink("erp"))})
    try:
        crm.put("customers", "acme", {"code": "acme", "name": "Acme", "country": "DE", "vat": None})
        hub.sync_once()
        (x,) = queries.exceptions(hub.store, "open")
        assert x["kind"] == "mapping" and "are for targets" in x["message"]
    finally:
        hub.close()
