"""Billing notes: what the ERP invoiced and was paid, shown on a CRM party or opportunity, one
per record, rewritten in place.

A note is a Tryton attachment (`ir.attachment` named "Billing (synchub)", its description the
text below): the Tryton client shows it on the record. Not a Tryton note (`ir.note`): a note's
message cannot be changed once written (the server refuses: `You are not allowed to modify the
field "Message"`), so it could only be kept current by adding notes.

The note is written for people and read back by machines: one `Label: value` line per field,
then synchub's marker (`[synchub:<16 hex>]`, one per target record: object and canonical id,
as for timesheet lines) on the last line:

    Billing (from the ERP, kept up to date by synchub)
    Currency: EUR
    Invoiced: 9000.00
    Paid: 4000.00
    Outstanding: 5000.00
    Last invoice: EU2026-00001
    Last invoice date: 2026-12-03
    Next due: 2026-12-03
    [synchub:0123456789abcdef]

A delta of `billing_notes` names its record with `opportunity` (a sale.opportunity id) or
`party` (a party.party id), and any of `currency`, `invoiced`, `paid`, `outstanding` (numbers
or decimal text, or amounts per currency as text: `2835.00 EUR; 2700.00 USD`),
`last_invoice`, `last_invoice_date` and `next_due` (ISO dates; `next_due`: the earliest due
date still unpaid, a past one says the customer is late). A field left out or null is shown
as "-" and reads back as null.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.tryton.lines import Refused, split_marker, tryton_id

__all__ = ["FIELDS", "RESOURCES", "note_fields", "note_text", "resource_of"]

TITLE = "Billing (from the ERP, kept up to date by synchub)"
FIELDS: tuple[tuple[str, str], ...] = (
    ("currency", "Currency"),
    ("invoiced", "Invoiced"),
    ("paid", "Paid"),
    ("outstanding", "Outstanding"),
    ("last_invoice", "Last invoice"),
    ("last_invoice_date", "Last invoice date"),
    ("next_due", "Next due"),
)
"""(delta field, label on the note), in the note's order."""
AMOUNTS = frozenset(("invoiced", "paid", "outstanding"))
PER_CURRENCY = re.compile(r"-?\d+\.\d\d [A-Z]{3}(; -?\d+\.\d\d [A-Z]{3})*")
"""Amounts per currency, as the `sums_by` step writes them."""
RESOURCES = {"opportunity": "sale.opportunity", "party": "party.party"}
"""Delta field naming the record → its Tryton model."""
_EMPTY = "-"
_LABELS = {label: name for name, label in FIELDS}


def resource_of(fields: Mapping[str, Any]) -> str:
    """The note's `resource` ("model,id") from a delta's `opportunity` or `party`."""
    given = [(name, fields[name]) for name in RESOURCES if fields.get(name) is not None]
    if len(given) != 1:
        raise Refused(
            "a billing note needs exactly one of `opportunity` (sale.opportunity id) or `party` "
            f"(party.party id); got {', '.join(n for n, _ in given) or 'neither'}"
        )
    name, value = given[0]
    return f"{RESOURCES[name]},{tryton_id(name, value)}"


def _shown(name: str, value: Any) -> str:
    if value is None or value == "":
        return _EMPTY
    if name in AMOUNTS:
        if isinstance(value, str) and PER_CURRENCY.fullmatch(value):
            return value  # one amount per currency: `2835.00 EUR; 2700.00 USD`
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise Refused(
                f"`{name}` must be an amount, or amounts per currency like "
                f"'2835.00 EUR; 2700.00 USD', got {value!r}"
            ) from None
        if not amount.is_finite():
            raise Refused(f"`{name}` must be a finite amount, got {value!r}")
        return format(amount.quantize(Decimal("0.01")), "f")
    text = str(value)
    if "\n" in text:
        raise Refused(f"`{name}` must be one line of text, got {value!r}")
    return text


def note_text(fields: Mapping[str, Any], mark: str | None) -> str:
    """The note's message for a delta's `fields`, ending with `mark` (if any)."""
    lines = [TITLE, *(f"{label}: {_shown(name, fields.get(name))}" for name, label in FIELDS)]
    return "\n".join([*lines, mark] if mark else lines)


def note_fields(message: str | None) -> tuple[dict[str, Any], str | None] | None:
    """(the fields a note shows, in delta terms; its marker's 16 hex) — None when `message` is
    not a billing note written by synchub."""
    text, digest = split_marker(message)
    if digest is None or text is None or not text.startswith(TITLE):
        return None
    out: dict[str, Any] = {name: None for name, _ in FIELDS}
    for line in text.splitlines()[1:]:
        label, sep, value = line.partition(": ")
        name = _LABELS.get(label)
        if sep and name is not None:
            out[name] = None if value.strip() == _EMPTY else value.strip()
    return out, digest
