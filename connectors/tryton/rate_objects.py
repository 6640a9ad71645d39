"""The ERP's rate cards: hourly rates per labor category, legal entity and currency, over time.

- `rates` (`product.price_list.line` with the `product_price_list_dates` module): one line of a
  company's price list for a service product. The product's code is the labor category
  (CONSULT-H), the price list's company the legal entity and its currency the rate's currency;
  `start_date`/`end_date` say when the rate is in force (none: always). `formula` must be a
  plain number (`140` or `140.00`) to be a rate: any other formula gives `rate` null, and the
  mapping's required `hourly_rate` quarantines the line with its key. `changed_by` is the
  login of who last wrote the line (its creator before any write): the audit trail's "who".

Same conventions as objects.py: keys are Tryton ids as text, a many-to-one is the target's id
as text, dates ISO text, numbers exact decimal text.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from connectors.tryton.objects_base import Row, TrytonObject, date_text, ref, related

__all__ = ["RATE_OBJECTS", "rate_of"]

_NUMBER = re.compile(r"\s*\d+(\.\d+)?\s*")


def rate_of(formula: Any) -> str | None:
    """The rate a price list formula sets when it is a plain number, as exact text; else None."""
    if not isinstance(formula, str) or not _NUMBER.fullmatch(formula):
        return None
    return str(Decimal(formula.strip()))


def _rate(row: Row) -> dict[str, Any]:
    price_list = row.get("price_list.")
    company = price_list.get("company.") if isinstance(price_list, dict) else None
    currency = company.get("currency.") if isinstance(company, dict) else None
    who = related(row, "write_uid", "login") or related(row, "create_uid", "login")
    return {
        "id": str(row["id"]),
        "price_list": related(row, "price_list", "name"),
        "company": ref(related(row, "price_list", "company")),
        "currency": currency.get("code") if isinstance(currency, dict) else None,
        "product": ref(row["product"]),
        "product_code": related(row, "product", "code"),
        "formula": row["formula"],
        "rate": rate_of(row["formula"]),
        "start_date": date_text(row["start_date"]),
        "end_date": date_text(row["end_date"]),
        "changed_by": who,
    }


RATE_OBJECTS = (
    TrytonObject(
        "rates",
        "product.price_list.line",
        [("product", "!=", None)],
        (
            "price_list",
            "price_list.name",
            "price_list.company",
            "price_list.company.currency.code",
            "product",
            "product.code",
            "formula",
            "start_date",
            "end_date",
            "create_uid.login",
            "write_uid.login",
        ),
        (
            ("id", "string"),
            ("price_list", "string?"),
            ("company", "string?"),
            ("currency", "string?"),
            ("product", "string?"),
            ("product_code", "string?"),
            ("formula", "string?"),
            ("rate", "string?"),
            ("start_date", "string?"),
            ("end_date", "string?"),
            ("changed_by", "string?"),
        ),
        _rate,
        follow=(("price_list", "product.price_list"), ("product", "product.product")),
    ),
)
"""The ERP's rate cards (price list lines of service products), by object."""
