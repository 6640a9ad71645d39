"""Writing ERP customers (`party.party`): the `parties` object of the Tryton ERP sink (used by
the deal-to-project workflow when a won deal's customer is not in the ERP yet).

Fields of a `parties` delta: `name` (required to create), `vat` (the tax identifier's code)
with `vat_type` (Tryton's identifier type, e.g. `eu_vat`, `us_ein`; none: untyped), `email`,
`phone`, `country` (ISO 3166-1 alpha-2 code of its address; Tryton must know the country).
Tryton checks tax identifiers of known types (an invalid EU VAT number is refused: the delta
is rejected with Tryton's message).

Idempotency: a create gives the party an untyped identifier `synchub:<16 hex>` (the marker of
its target record: object and canonical id) and first searches for it: a party that has it is
the one created before, and is only brought to the desired fields. An update changes the tax
identifier, the first email and phone and the first address's country in place (adding
what is missing), never deletes a contact or an address. Every write is read back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.tryton.client import TrytonClient
from connectors.tryton.lines import Refused, create_marker, target_id
from connectors.tryton.outcomes import Mismatch
from hub.spi import Delta

__all__ = ["PARTY_FIELDS", "PartyWriter", "party_read_back"]

MODEL = "party.party"
PARTY_FIELDS = ("name", "vat", "vat_type", "email", "phone", "country")
_READ = (
    "name",
    "tax_identifier.code",
    "tax_identifier.type",
    "email",
    "phone",
    "addresses.country.code",
    "identifiers",
    "contact_mechanisms",
    "addresses",
)


def party_read_back(record: Mapping[str, Any]) -> dict[str, Any]:
    """A captured `parties` record (objects.py) in the fields a delta is written in."""
    out = {k: record[k] for k in ("name", "email", "phone", "country") if k in record}
    if "tax_identifier" in record:
        out["vat"] = record["tax_identifier"]
        out["vat_type"] = record.get("tax_identifier_type")
    return out


class PartyWriter:
    """Creates and updates customers for the ERP sink (one delta at a time)."""

    def __init__(self, client: TrytonClient) -> None:
        self.client = client
        self._countries: dict[str, int] = {}

    def create(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        wanted = self._wanted(delta.fields, create=True)
        mark = create_marker(delta)[1:-1]  # synchub:<16 hex>, without the brackets
        found = self.client.search("party.identifier", [("code", "=", mark)])
        if found:
            (row,) = self.client.read("party.identifier", found[:1], ["party"])
            party = int(row["party"])
            changed = self._converge(party, wanted)
            return str(party), {"marker": mark, "existing": True, "changed": changed}
        values: dict[str, Any] = {"name": wanted["name"]}
        identifiers = [{"type": None, "code": mark}]
        if wanted.get("vat"):
            identifiers.insert(0, {"type": wanted.get("vat_type"), "code": wanted["vat"]})
        values["identifiers"] = [("create", identifiers)]
        mechanisms = [{"type": t, "value": wanted[t]} for t in ("email", "phone") if wanted.get(t)]
        if mechanisms:
            values["contact_mechanisms"] = [("create", mechanisms)]
        address = {"country": self._country(wanted["country"])} if wanted.get("country") else {}
        values["addresses"] = [("create", [address])]
        (party,) = self.client.create(MODEL, [values])
        self._verify(party, wanted)
        return str(party), {"marker": mark}

    def update(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        party = target_id(delta)
        changed = self._converge(party, self._wanted(delta.fields, create=False))
        return str(party), {"changed": changed}

    def delete(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        raise Refused(
            "synchub does not delete customers in Tryton (their invoices and projects keep "
            "them); archive the party in Tryton if it is gone for good"
        )

    # -- values ---------------------------------------------------------------------------------

    @staticmethod
    def _wanted(fields: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
        unknown = sorted(set(fields) - set(PARTY_FIELDS))
        if unknown:
            raise Refused(f"unknown parties fields {unknown}; the fields are {list(PARTY_FIELDS)}")
        wanted: dict[str, Any] = {}
        for name in PARTY_FIELDS:
            if name in fields:
                value = fields[name]
                if value is not None and not isinstance(value, str):
                    raise Refused(f"`{name}` must be text, got {value!r}")
                wanted[name] = value.strip() if isinstance(value, str) and value.strip() else None
        if wanted.get("vat") and not wanted.get("vat_type"):
            raise Refused(
                "`vat` needs `vat_type`, Tryton's type of tax identifier (e.g. eu_vat, us_ein): "
                "an untyped identifier is not the party's tax identifier"
            )
        if create and not wanted.get("name"):
            raise Refused("a new customer needs a `name`")
        if "name" in wanted and not wanted["name"]:
            raise Refused("a customer's name cannot be empty")
        if wanted.get("country"):
            wanted["country"] = str(wanted["country"]).upper()
        return wanted

    def _country(self, code: str) -> int:
        if code not in self._countries:
            found = self.client.search("country.country", [("code", "=", code)])
            if not found:
                raise Refused(
                    f"Tryton has no country {code!r}: load the countries into Tryton "
                    "(trytond_import_countries) or fix `country` in the mapping"
                )
            self._countries[code] = found[0]
        return self._countries[code]

    # -- convergence ----------------------------------------------------------------------------

    def _converge(self, party: int, wanted: Mapping[str, Any]) -> list[str]:
        current = self._read(party)
        if current is None:
            raise Refused(
                f"party {party} does not exist in Tryton (deleted there?); re-create it or "
                "resolve the record's link"
            )
        values: dict[str, Any] = {}
        changed = []
        if "name" in wanted and current["name"] != wanted["name"]:
            values["name"] = wanted["name"]
            changed.append("name")
        if "vat" in wanted and wanted["vat"] and _vat(current) != wanted["vat"]:
            values["identifiers"] = self._vat_ops(current, wanted)
            changed.append("vat")
        ops = self._mechanism_ops(current, wanted)
        if ops:
            values["contact_mechanisms"] = ops
            changed += [t for t in ("email", "phone") if t in wanted and current[t] != wanted[t]]
        if wanted.get("country") and _country(current) != wanted["country"]:
            values["addresses"] = self._address_ops(current, wanted["country"])
            changed.append("country")
        if values:
            self.client.write(MODEL, [party], values)
            self._verify(party, {k: wanted[k] for k in changed})
        return changed

    def _vat_ops(self, current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[Any]:
        tax = current.get("tax_identifier.")
        if isinstance(tax, Mapping) and tax.get("id"):
            return [("write", [tax["id"]], {"code": wanted["vat"], "type": wanted.get("vat_type")})]
        return [("create", [{"code": wanted["vat"], "type": wanted.get("vat_type")}])]

    def _mechanism_ops(self, current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[Any]:
        kinds = [
            t for t in ("email", "phone") if t in wanted and wanted[t] and current[t] != wanted[t]
        ]
        if not kinds:
            return []
        rows = self.client.read(
            "party.contact_mechanism", current["contact_mechanisms"], ["type", "value"]
        )
        ops: list[Any] = []
        for kind in kinds:
            existing = [r for r in rows if r["type"] == kind]
            if existing:
                ops.append(("write", [existing[0]["id"]], {"value": wanted[kind]}))
            else:
                ops.append(("create", [{"type": kind, "value": wanted[kind]}]))
        return ops

    def _address_ops(self, current: Mapping[str, Any], code: str) -> list[Any]:
        country = self._country(code)
        if current["addresses"]:
            return [("write", [current["addresses"][0]], {"country": country})]
        return [("create", [{"country": country}])]

    def _verify(self, party: int, wanted: Mapping[str, Any]) -> None:
        current = self._read(party)
        if current is None:
            raise Mismatch(f"Tryton answered success but party {party} cannot be read back")
        got = {
            "name": current["name"],
            "vat": _vat(current),
            "email": current["email"] or None,
            "phone": current["phone"] or None,
            "country": _country(current),
        }
        wrong = sorted(k for k in wanted if k in got and wanted[k] and got[k] != wanted[k])
        if wrong:
            raise Mismatch(
                f"Tryton answered success but party {party} reads back with different "
                f"{', '.join(wrong)}; will retry"
            )

    def _read(self, party: int) -> dict[str, Any] | None:
        rows = self.client.search_read(MODEL, [("id", "=", party)], _READ)
        return rows[0] if rows else None


def _vat(row: Mapping[str, Any]) -> str | None:
    tax = row.get("tax_identifier.")
    return str(tax["code"]) if isinstance(tax, Mapping) and tax.get("code") else None


def _country(row: Mapping[str, Any]) -> str | None:
    for address in row.get("addresses.") or ():
        country = address.get("country.") if isinstance(address, Mapping) else None
        if isinstance(country, Mapping) and country.get("code"):
            return str(country["code"])
    return None
