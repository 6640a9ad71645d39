"""The ERP sink's `parties`: a customer with its tax identifier, email, phone and country,
created once per record (an untyped `synchub:` identifier), updated in place, read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.tryton import TrytonConnector
from hub.contracts.sink import SinkContract
from hub.spi import Delta, DeltaOp, Sink
from tests.connectors.tryton.conftest import Erp, TrytonDB, TrytonSinkCase

WRITES = tuple(f"model.party.party.{m}" for m in ("create", "write", "delete"))
VATS = ("DE136695976", "DE129273398", "DE813495425")


def countries(erp: Erp) -> None:
    """The test databases have no countries loaded: the two the tests use."""
    for code, name in (("DE", "Germany"), ("FR", "France")):
        if not erp.c.search("country.country", [("code", "=", code)]):
            erp.c.create("country.country", [{"code": code, "name": name}])


class TestTrytonPartySink(TrytonSinkCase, SinkContract):
    object_name = "parties"
    entity = "Account"
    writes = WRITES

    def make_sink(self, tmp_path: Path) -> Sink:
        sink = self.open_sink(tmp_path)
        self.erp = Erp(sink.client)
        countries(self.erp)
        return sink

    def fields(self, i: int) -> dict[str, Any]:
        return {
            "name": f"Customer {i} GmbH",
            "vat": VATS[i % 3],
            "vat_type": "eu_vat",
            "email": f"ap{i}@customer.example",
            "country": "DE" if i % 2 == 0 else "FR",
        }

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        rows = self.erp.c.search_read(
            "party.party",
            [("id", "=", int(target_key))],
            [
                "name",
                "tax_identifier.code",
                "tax_identifier.type",
                "email",
                "addresses.country.code",
            ],
        )
        if not rows:
            return None
        (row,) = rows
        tax = row.get("tax_identifier.") or {}
        address = (row.get("addresses.") or [{}])[0]
        return {
            "name": row["name"],
            "vat": tax.get("code"),
            "vat_type": tax.get("type"),
            "email": row["email"] or None,
            "country": (address.get("country.") or {}).get("code"),
        }

    def test_a_delete_with_a_target_key_removes_the_record(self, tmp_path: Path) -> None:
        """Customers are never deleted by synchub: the delete is refused, saying why."""
        sink = self.make_sink(tmp_path)
        (created,) = sink.apply([self.delta(sink, 0)])
        delete = self.delta(sink, 0, op="delete", target_key=created.target_key, fields={})
        (refused,) = sink.apply([delete])
        assert refused.status == "rejected" and "does not delete customers" in (
            refused.reason or ""
        )
        assert self.read_back(sink, created.target_key or "") is not None


def delta(op: DeltaOp, target: str | None, key: str, **fields: Any) -> Delta:
    return Delta("erp", "parties", "Account/globex", target, op, fields, key)


def test_a_customer_is_created_once_and_updated_in_place(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    sink = TrytonConnector("erp", tryton_db.options(), tmp_path).sink()
    erp = Erp(sink.client)
    countries(erp)
    globex = {"name": "Globex SE", "vat": "DE136695976", "vat_type": "eu_vat", "country": "DE"}
    (created,) = sink.apply([delta("create", None, "k1", **globex, phone="+49 30 1")])
    assert created.status == "applied", created.reason
    party = int(created.target_key or 0)
    (again,) = sink.apply([delta("create", None, "k2", **globex)])  # an answer lost: found
    assert again.target_key == created.target_key and again.details["existing"] is True
    assert erp.c.search("party.party", [("name", "=", "Globex SE")]) == [party]
    (row,) = erp.c.read("party.party", [party], ["identifiers"])
    codes = {r["code"] for r in erp.c.read("party.identifier", row["identifiers"], ["code"])}
    assert "DE136695976" in codes and any(c.startswith("synchub:") for c in codes)

    (updated,) = sink.apply(
        [delta("update", created.target_key, "k3", email="ap@globex.example", country="FR")]
    )
    assert updated.status == "applied", updated.reason
    assert updated.details["changed"] == ["email", "country"]
    (row,) = erp.c.read("party.party", [party], ["email", "phone", "addresses"])
    assert row["email"] == "ap@globex.example" and row["phone"] == "+49 30 1"
    assert len(row["addresses"]) == 1  # changed in place, not added

    (bad,) = sink.apply(
        [delta("create", None, "k4", name="Bad VAT", vat="DE123", vat_type="eu_vat")]
    )
    assert bad.status == "rejected" and "DE123" in (bad.reason or "")
    (bad,) = sink.apply([delta("create", None, "k5", name="X", country="ZZ")])
    assert bad.status == "rejected" and "no country 'ZZ'" in (bad.reason or "")
    (bad,) = sink.apply([delta("create", None, "k6", name="X", vat="DE136695976")])
    assert bad.status == "rejected" and "needs `vat_type`" in (bad.reason or "")
