"""Works a CRM database (golden_crm.py) over JSON-RPC as a sales team would: customers with
their identifiers and contact mechanisms, deals from lead to won, lost or cancelled."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from connectors.tryton.client import TrytonClient

ENTITIES = {"US": "Acme Consulting US", "EU": "Acme Consulting EU GmbH"}


class Crm:
    """The CRM's two legal entities (US in USD, EU in EUR), their sales representatives and
    the service-line products, found by name; methods do what a salesperson does."""

    def __init__(self, client: TrytonClient) -> None:
        self.c = client
        self.company: dict[str, int] = {}
        self.currency: dict[str, int] = {}
        self.rep: dict[str, int] = {}
        for entity, name in ENTITIES.items():
            (company,) = client.search("company.company", [("party.name", "=", name)])
            (row,) = client.read("company.company", [company], ["currency"])
            self.company[entity], self.currency[entity] = company, int(row["currency"])
            (self.rep[entity],) = client.search("company.employee", [("company", "=", company)])
        self.product = {
            code: client.search("product.product", [("code", "=", code)])[0]
            for code in ("DATA", "CLOUD")
        }
        (self.hour,) = client.search("product.uom", [("symbol", "=", "h")])

    def country(self, code: str, name: str) -> int:
        found = self.c.search("country.country", [("code", "=", code)])
        return (
            found[0]
            if found
            else self.c.create("country.country", [{"code": code, "name": name}])[0]
        )

    def customer(
        self,
        name: str,
        *,
        vat: tuple[str, str] | None = None,
        email: str | None = None,
        phone: str | None = None,
        country: tuple[str, str] | None = None,
    ) -> int:
        """A party with an address (in `country`: (code, name)), its tax identifier `vat`
        ((type, code), e.g. ("eu_vat", "DE136695976")) and contact mechanisms."""
        address: dict[str, Any] = {"street": "1 Main St", "city": "Springfield"}
        if country is not None:
            address["country"] = self.country(*country)
        values: dict[str, Any] = {"name": name, "addresses": [("create", [address])]}
        mechanisms = [{"type": t, "value": v} for t, v in (("email", email), ("phone", phone)) if v]
        if mechanisms:
            values["contact_mechanisms"] = [("create", mechanisms)]
        if vat is not None:
            values["identifiers"] = [("create", [{"type": vat[0], "code": vat[1]}])]
        (party,) = self.c.create("party.party", [values])
        return party

    def deal(
        self,
        customer: int | None,
        description: str,
        *,
        entity: str = "US",
        service: str = "DATA",
        hours: float = 40,
        amount: Decimal = Decimal(6000),
        probability: float = 0.5,
        close: dt.date | None = None,
    ) -> int:
        """A new lead of legal entity `entity` for `customer`, selling `hours` of `service`."""
        values: dict[str, Any] = {
            "description": description,
            "company": self.company[entity],
            "currency": self.currency[entity],
            "employee": self.rep[entity],
            "amount": amount,
            "conversion_probability": probability,
            "end_date": close or dt.date.today() + dt.timedelta(days=30),
            "lines": [
                (
                    "create",
                    [{"product": self.product[service], "quantity": hours, "unit": self.hour}],
                )
            ],
        }
        if customer is not None:
            values["party"] = customer
        (opportunity,) = self.c.create("sale.opportunity", [values], context=self.ctx(entity))
        return opportunity

    def ctx(self, entity: str) -> dict[str, int]:
        """The context that acts in legal entity `entity` (a record's company must be the
        context's: Tryton's company domain)."""
        return {"company": self.company[entity], "employee": self.rep[entity]}

    def entity_of(self, opportunity: int) -> str:
        company = int(self.read(opportunity, "company")["company"])
        return next(e for e, c in self.company.items() if c == company)

    def act(self, model: str, button: str, ids: list[int], entity: str) -> None:
        self.c.button(model, button, ids, context=self.ctx(entity))

    def qualify(self, opportunity: int) -> None:
        """lead → opportunity."""
        self.act("sale.opportunity", "opportunity", [opportunity], self.entity_of(opportunity))

    def convert(self, opportunity: int) -> list[int]:
        """opportunity → converted: the draft sales it made."""
        self.act("sale.opportunity", "convert", [opportunity], self.entity_of(opportunity))
        return list(self.read(opportunity, "sales")["sales"])

    def close_sales(self, opportunity: int) -> None:
        """Quote and confirm the deal's sales: Tryton turns the deal 'won' (it has no 'won'
        button: won means its sales are confirmed)."""
        entity, sales = self.entity_of(opportunity), self.read(opportunity, "sales")["sales"]
        self.act("sale.sale", "quote", sales, entity)
        self.act("sale.sale", "confirm", sales, entity)

    def win(self, opportunity: int) -> None:
        """Qualify if a lead, convert, then close its sales."""
        if self.state(opportunity) == "lead":
            self.qualify(opportunity)
        self.convert(opportunity)
        self.close_sales(opportunity)

    def lose(self, opportunity: int, reason: str = "Budget cut") -> None:
        entity = self.entity_of(opportunity)
        self.c.write(
            "sale.opportunity", [opportunity], {"lost_reason": reason}, context=self.ctx(entity)
        )
        self.act("sale.opportunity", "lost", [opportunity], entity)

    def cancel(self, opportunity: int) -> None:
        self.act("sale.opportunity", "cancel", [opportunity], self.entity_of(opportunity))

    def read(self, opportunity: int, *fields: str) -> dict[str, Any]:
        (row,) = self.c.read("sale.opportunity", [opportunity], list(fields))
        return row

    def state(self, opportunity: int) -> str:
        return str(self.read(opportunity, "state")["state"])
