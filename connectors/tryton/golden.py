"""Bake the golden Tryton database: the accounting set-up every test and demo starts from.

Runs in the *Tryton* venv's python (it imports proteus and trytond, not synchub), in-process
with no server: `python golden.py CONFIG DATABASE YEAR`. The database must already hold the
activated modules (trytond-admin). Creates, idempotently:

- company "Acme Consulting" with currency USD, attached to the admin user;
- the English chart of accounts with default receivable / payable / revenue / expense;
- fiscal year YEAR (1 Jan - 31 Dec) with 12 periods and invoice sequences;
- payment term "Due on receipt";
- product category "Services" and the hourly service product "Consulting hour"
  (code CONSULT-H, list price 150);
- a second legal entity, "Acme Consulting EU GmbH" in EUR, with its own chart of accounts,
  fiscal year YEAR and invoice sequences, and the service product priced 130 (EUR) in it. The
  admin user may act in both and sees both at once (`company_filter` 'all'); its current
  company stays the US one, so a call acts in the EU entity with `{"company": id}` in its
  context.

Prints one line of timings.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from decimal import Decimal
from typing import Any


def main(config_file: str, database: str, year: int) -> None:
    """Set up `database` as described in the module docstring."""
    t0 = time.perf_counter()
    from proteus import Model, config

    config.set_trytond(database=database, config_file=config_file)  # before other imports
    from trytond.modules.account.tests.tools import (
        create_chart,
        create_fiscalyear,
        get_accounts,
    )
    from trytond.modules.account_invoice.tests.tools import (
        create_payment_term,
        set_fiscalyear_invoice_sequences,
    )
    from trytond.modules.company.tests.tools import create_company, get_company

    t1 = time.perf_counter()
    company: Any
    found = Model.get("company.company").find([("party.name", "=", "Acme Consulting")])
    if found:
        company = found[0]
    else:
        party = Model.get("party.party")(name="Acme Consulting")
        party.save()
        create_company(party=party)
        company = get_company()

    def books(company: Any, fiscal_name: str) -> dict[str, Any]:
        """Chart of accounts and fiscal year of `company` (in its context)."""
        if not Model.get("account.account").find([("company", "=", company.id)]):
            create_chart(company)
        accounts: dict[str, Any] = get_accounts(company)
        years = Model.get("account.fiscalyear").find([("company", "=", company.id)])
        if not years:
            span = (dt.date(year, 1, 1), dt.date(year, 12, 31))
            fiscalyear = create_fiscalyear(company, span)
            fiscalyear.name = fiscal_name
            fiscalyear = set_fiscalyear_invoice_sequences(fiscalyear)
            fiscalyear.click("create_period")
        return accounts

    accounts = books(company, str(year))
    if not Model.get("account.invoice.payment_term").find():
        term = create_payment_term()
        term.name = "Due on receipt"
        term.save()
    product = _service_product(Model, accounts)
    eu = _eu_company(Model, company)
    conf = config.get_config()
    conf._context = Model.get("res.user").get_preferences(True, {})
    with conf.set_context(company=eu.id):
        eu_accounts = books(eu, f"{year} EU")
        category = Model.get("product.category")(product.template.account_category.id)
        category.account_revenue = eu_accounts["revenue"]
        category.account_expense = eu_accounts["expense"]
        category.save()
        template = Model.get("product.template")(product.template.id)
        template.list_price = Decimal(130)
        template.save()
    print(f"golden: import {t1 - t0:.1f}s, setup {time.perf_counter() - t1:.1f}s", flush=True)


def _eu_company(model: Any, us: Any) -> Any:
    """The second legal entity (EUR), allowed to the admin, who then sees both companies."""
    found = model.get("company.company").find([("party.name", "=", "Acme Consulting EU GmbH")])
    if found:
        return found[0]
    currencies = model.get("currency.currency").find([("code", "=", "EUR")])
    if currencies:
        eur = currencies[0]
    else:
        eur = model.get("currency.currency")(
            name="Euro", code="EUR", symbol="€", rounding=Decimal("0.01"), digits=2
        )
        eur.save()
        model.get("currency.currency.rate")(
            date=dt.date(2000, 1, 1), rate=Decimal("0.92"), currency=eur
        ).save()
    party = model.get("party.party")(name="Acme Consulting EU GmbH")
    party.save()
    eu = model.get("company.company")(party=party, currency=eur)
    eu.save()
    (admin,) = model.get("res.user").find([("login", "=", "admin")])
    admin.companies.append(model.get("company.company")(eu.id))
    admin.company = model.get("company.company")(us.id)
    admin.company_filter = "all"
    admin.save()
    return eu


def _service_product(model: Any, accounts: dict[str, Any]) -> Any:
    """The hourly service product that projects and tasks are invoiced with."""
    found = model.get("product.product").find([("code", "=", "CONSULT-H")])
    if found:
        return found[0]
    category = model.get("product.category")(
        name="Services",
        accounting=True,
        account_revenue=accounts["revenue"],
        account_expense=accounts["expense"],
    )
    category.save()
    (hour,) = model.get("product.uom").find([("symbol", "=", "h")])
    template = model.get("product.template")(
        name="Consulting hour",
        type="service",
        default_uom=hour,
        salable=True,
        sale_uom=hour,
        list_price=Decimal(150),
        account_category=category,
    )
    (product,) = template.products
    product.suffix_code = "CONSULT-H"
    template.save()
    return model.get("product.product").find([("code", "=", "CONSULT-H")])[0]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
