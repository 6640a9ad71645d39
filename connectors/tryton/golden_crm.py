"""Bake the golden CRM database: the set-up a firm's Tryton CRM (sale_opportunity) starts from.

Runs in the *Tryton* venv's python (it imports proteus and trytond, not synchub), in-process
with no server: `python golden_crm.py CONFIG DATABASE YEAR`. The database must already hold the
activated modules (trytond-admin -u sale_opportunity). Creates, idempotently:

- currencies USD and EUR;
- two legal entities: "Acme Consulting US" (USD) and "Acme Consulting EU GmbH" (EUR), both
  allowed to the admin user, who sees both at once (`company_filter` 'all': a search covers
  both companies; a record is created in the company its values or the context name);
- a sales representative (employee) in each company, the admin's employees;
- product category "Services" (accounting, no accounts: the CRM books nothing) and one hourly
  service product per service line: DATA "Data platform" and CLOUD "Cloud migration", priced
  150 USD an hour in the US entity and 130 EUR in the EU one;
- sales invoiced and shipped manually (the CRM database has no chart of accounts: a sale
  confirmed with the default methods fails after the commit, in ir.error).

Two deals per legal entity are *not* created here: tests and the demo open their own.
Prints one line of timings.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from decimal import Decimal
from typing import Any

SERVICE_LINES = (("DATA", "Data platform"), ("CLOUD", "Cloud migration"))
ENTITIES = (
    ("Acme Consulting US", "USD", "Sam Sales"),
    ("Acme Consulting EU GmbH", "EUR", "Eva Vertrieb"),
)
_LIST_PRICES = (Decimal(150), Decimal(130))
"""The hourly list price of every service product in each of ENTITIES, in its currency."""
_CURRENCIES = {
    "USD": ("U.S. Dollar", "$", Decimal(1)),
    "EUR": ("Euro", "€", Decimal("0.92")),
}


def main(config_file: str, database: str, year: int) -> None:
    """Set up `database` as described in the module docstring."""
    t0 = time.perf_counter()
    from proteus import Model, config

    config.set_trytond(database=database, config_file=config_file)  # before other imports
    from trytond.modules.company.tests.tools import create_company

    t1 = time.perf_counter()
    currencies = {code: _currency(Model, code) for code in _CURRENCIES}
    company_model = Model.get("company.company")
    companies = []
    for name, code, _ in ENTITIES:
        found = company_model.find([("party.name", "=", name)])
        if found:
            companies.append(found[0])
            continue
        party = Model.get("party.party")(name=name)
        party.save()
        if not company_model.find():
            create_company(party=party, currency=currencies[code])  # the admin's first company
            (company,) = company_model.find([("party.name", "=", name)])
        else:
            company = company_model(party=party, currency=currencies[code])
            company.save()
        companies.append(company)
    employees = [
        _employee(Model, rep, c) for (_, _, rep), c in zip(ENTITIES, companies, strict=True)
    ]
    user_model = Model.get("res.user")
    (admin,) = user_model.find([("login", "=", "admin")])
    for company in companies:
        if company not in admin.companies:
            admin.companies.append(company)
    for employee in employees:
        if employee not in admin.employees:
            admin.employees.append(employee)
    admin.company = companies[0]
    admin.employee = employees[0]
    admin.company_filter = "all"
    admin.save()
    _products(Model, config.get_config(), companies)
    sale_config = Model.get("sale.configuration")(1)
    sale_config.sale_invoice_method = "manual"
    sale_config.sale_shipment_method = "manual"
    sale_config.save()
    print(f"golden crm: import {t1 - t0:.1f}s, setup {time.perf_counter() - t1:.1f}s", flush=True)


def _currency(model: Any, code: str) -> Any:
    found = model.get("currency.currency").find([("code", "=", code)])
    if found:
        return found[0]
    name, symbol, rate = _CURRENCIES[code]
    currency = model.get("currency.currency")(
        name=name, code=code, symbol=symbol, rounding=Decimal("0.01"), digits=2
    )
    currency.save()
    model.get("currency.currency.rate")(
        date=dt.date(2000, 1, 1), rate=rate, currency=currency
    ).save()
    return currency


def _employee(model: Any, name: str, company: Any) -> Any:
    found = model.get("company.employee").find(
        [("party.name", "=", name), ("company", "=", company.id)]
    )
    if found:
        return found[0]
    party = model.get("party.party")(name=name)
    party.save()
    employee = model.get("company.employee")(party=party, company=company)
    employee.save()
    return employee


def _products(model: Any, conf: Any, companies: list[Any]) -> None:
    """One hourly service product per service line (its code is the line's), with a list
    price in each legal entity (a company-dependent value: 150 USD, 130 EUR)."""
    categories = model.get("product.category").find([("name", "=", "Services")])
    if categories:
        category = categories[0]
    else:
        category = model.get("product.category")(name="Services", accounting=True)
        category.save()
    (hour,) = model.get("product.uom").find([("symbol", "=", "h")])
    for code, name in SERVICE_LINES:
        if model.get("product.product").find([("code", "=", code)]):
            continue
        template = model.get("product.template")(
            name=name,
            type="service",
            default_uom=hour,
            salable=True,
            sale_uom=hour,
            list_price=Decimal(150),
            account_category=category,
        )
        (product,) = template.products
        product.suffix_code = code
        template.save()
        for company, price in zip(companies, _LIST_PRICES, strict=True):
            with conf.set_context(company=company.id):
                priced = model.get("product.template")(template.id)
                priced.list_price = price
                priced.save()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
