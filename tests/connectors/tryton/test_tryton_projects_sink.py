"""The ERP sink's `projects`: a project with its tasks, created once per record (its marker in
the comment), brought to the desired fields, tasks added never removed, read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.tryton import TrytonConnector
from hub.contracts.sink import SinkContract
from hub.spi import Delta, DeltaOp, Sink
from tests.connectors.tryton.conftest import Erp, TrytonDB, TrytonSinkCase

WRITES = tuple(f"model.project.work.{m}" for m in ("create", "write", "delete"))


class TestTrytonProjectSink(TrytonSinkCase, SinkContract):
    object_name = "projects"
    entity = "Project"
    writes = WRITES

    def make_sink(self, tmp_path: Path) -> Sink:
        sink = self.open_sink(tmp_path)
        self.erp = Erp(sink.client)
        self.customers = [self.erp.customer(f"Customer {i}") for i in range(2)]
        return sink

    def fields(self, i: int) -> dict[str, Any]:
        return {
            "name": f"Data platform {i}",
            "party": str(self.customers[i % 2]),
            "invoice_method": "timesheet" if i % 2 == 0 else "effort",
            "list_price": 150 + 10 * i,
        }

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        rows = self.erp.c.search_read(
            "project.work",
            [("id", "=", int(target_key))],
            ["name", "party", "project_invoice_method", "list_price"],
        )
        if not rows:
            return None
        (row,) = rows
        return {
            "name": row["name"],
            "party": str(row["party"]),
            "invoice_method": row["project_invoice_method"],
            "list_price": float(row["list_price"]),
        }


def delta(op: DeltaOp, target: str | None, key: str, **fields: Any) -> Delta:
    return Delta("erp", "projects", "Project/OPP-7", target, op, fields, key)


def test_a_project_is_created_once_with_its_tasks_and_tasks_are_only_added(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    sink = TrytonConnector("erp", tryton_db.options(), tmp_path).sink()
    erp = Erp(sink.client)
    customer = erp.customer("Globex")
    project = {
        "name": "Globex data platform",
        "party": customer,
        "list_price": "175.5",
        "product": "CONSULT-H",
        "description": "From deal OPP-7",
        "tasks": ["Discovery", {"name": "Build", "hours": 80}],
    }
    (created,) = sink.apply([delta("create", None, "k1", **project)])
    assert created.status == "applied", created.reason
    pid = int(created.target_key or 0)
    (row,) = erp.c.read("project.work", [pid], ["children", "comment", "list_price", "product"])
    tasks = erp.c.read(
        "project.work", row["children"], ["name", "effort_duration", "timesheet_works"]
    )
    assert sorted(t["name"] for t in tasks) == ["Build", "Discovery"]
    assert all(t["timesheet_works"] for t in tasks), "tasks are open for time"
    assert row["comment"].startswith("From deal OPP-7\n[synchub:")
    assert row["product"] == erp.product and str(row["list_price"]) == "175.5000"

    (again,) = sink.apply([delta("create", None, "k2", **{**project, "tasks": ["Discovery"]})])
    assert again.target_key == created.target_key and again.details["existing"] is True
    assert erp.c.search(
        "project.work", [("type", "=", "project"), ("name", "=", "Globex data platform")]
    ) == [pid]

    (updated,) = sink.apply(
        [delta("update", created.target_key, "k3", tasks=["Discovery", "Run"], list_price=180)]
    )
    assert updated.status == "applied", updated.reason
    assert updated.details["changed"] == ["list_price", "tasks"]
    (row,) = erp.c.read("project.work", [pid], ["children"])
    names = sorted(t["name"] for t in erp.c.read("project.work", row["children"], ["name"]))
    assert names == ["Build", "Discovery", "Run"]  # Build stays: tasks are never removed

    (bad,) = sink.apply([delta("create", None, "k4", name="X", product="NOPE")])
    assert bad.status == "rejected" and "no product with code 'NOPE'" in (bad.reason or "")
    (bad,) = sink.apply([delta("create", None, "k5", name="X", invoice_method="barter")])
    assert bad.status == "rejected" and "invoice_method must be one of" in (bad.reason or "")


def test_a_project_of_the_eu_legal_entity_is_made_and_captured_there(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    """The golden ERP has two legal entities; a project names its company, and the source
    (which sees both) captures it in that company."""
    sink = TrytonConnector("erp", tryton_db.options(), tmp_path).sink()
    erp = Erp(sink.client)
    (eu,) = erp.c.search("company.company", [("party.name", "=", "Acme Consulting EU GmbH")])
    (row,) = erp.c.read("company.company", [eu], ["currency.code"])
    assert row["currency."]["code"] == "EUR" and eu != erp.company
    customer = erp.customer("Initech GmbH")
    fields = {"name": "EU rollout", "party": customer, "company": eu, "product": "CONSULT-H"}
    (created,) = sink.apply([delta("create", None, "k1", **fields, tasks=["Plan"])])
    assert created.status == "applied", created.reason
    source = TrytonConnector("erp", tryton_db.options(objects=["projects", "tasks"]), tmp_path)
    found = {
        (c.object, c.key): c.record for b in source.source().read(None, 100) for c in b.changes
    }
    project = found["projects", created.target_key]
    assert project is not None and project["company"] == str(eu)
    tasks = [
        r
        for (o, _), r in found.items()
        if o == "tasks" and r and r["project"] == created.target_key
    ]
    assert [t["name"] for t in tasks] == ["Plan"] and tasks[0]["company"] == str(eu)
    price = erp.c.read(
        "product.product", [erp.product], ["list_price_used"], context={"company": eu}
    )
    assert price[0]["list_price_used"] == 130  # the EU entity's price, in EUR
