"""Bake the golden Tryton database: the accounting set-up every test and demo starts from.

Runs in the *Tryton* venv's python (it imports proteus and trytond, not synchub), in-process
with no server: `python golden.py CONFIG DATABASE YEAR`. The database must already hold the
activated modules (trytond-admin). Creates, idempotently:

- company "Acme Consulting" with currency USD, attached to the admin user;
- the English chart of accounts with default receivable / payable / revenue / expense;
- fiscal year YEAR (1 Jan - 31 Dec) with 12 periods and invoice sequences;
- payment term "Due on receipt";
- product category "Services" and the hourly service product "Consulting hour"
  (code CONSULT-H, list price 150).

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
    if Model.get("company.company").find():
        company = get_company()
    else:
        party = Model.get("party.party")(name="Acme Consulting")
        party.save()
        create_company(party=party)
        company = get_company()
    if not Model.get("account.account").find([("company", "=", company.id)]):
        create_chart(company)
    accounts = get_accounts(company)
    if not Model.get("account.fiscalyear").find([("name", "=", str(year))]):
        span = (dt.date(year, 1, 1), dt.date(year, 12, 31))
        fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(company, span))
        fiscalyear.click("create_period")
    if not Model.get("account.invoice.payment_term").find():
        term = create_payment_term()
        term.name = "Due on receipt"
        term.save()
    _service_product(Model, accounts)
    print(f"golden: import {t1 - t0:.1f}s, setup {time.perf_counter() - t1:.1f}s", flush=True)


def _service_product(model: Any, accounts: dict[str, Any]) -> None:
    """The hourly service product that projects and tasks are invoiced with."""
    if model.get("product.product").find([("code", "=", "CONSULT-H")]):
        return
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


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
