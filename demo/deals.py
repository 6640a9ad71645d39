"""The deal-to-project rules of the firm's loop, as a mapping document: a deal won in the CRM
makes its customer an ERP customer (matched by tax identifier, else name and country) and a
project with the tasks of its service line, priced at the rate card in force on the day it
was won; the ERP's invoices come back as a billing note on the CRM customer.

`mapping(crm_companies, erp_companies)` builds it for the company ids of the two databases
(legal entity code → company id, e.g. {"US": 1, "EU": 2}). Used by the demo, the loop
benchmark and the tests; docs/workflows.md explains each rule.
"""

from __future__ import annotations

import json
from typing import Any

TASKS = {"DATA": ["Discovery", "Build", "Run"], "CLOUD": ["Assess", "Migrate"]}
LABOR = {"DATA": "consult-h", "CLOUD": "consult-h"}
BILLING = {"DATA": "timesheet", "CLOUD": "timesheet"}
"""Service line → how its projects are invoiced (Tryton: `timesheet`, or `effort` for a
fixed price on the planned effort)."""
"""Service line → the labor category a project's hourly rate comes from."""
RATED = "a rate card is in force on the project's start date for its labor category"


ISSUED = 'status ["posted", "paid"]'
"""The invoices a billing note adds up: the issued ones."""


def mapping(
    crm_companies: dict[str, int],
    erp_companies: dict[str, int],
    billing: dict[str, str] = BILLING,
) -> dict[str, Any]:
    """The deal-to-project rules; company ids differ per database, so they are looked up."""
    crm_entity = {str(i): f"LegalEntity/{e.lower()}" for e, i in crm_companies.items()}
    erp_entity = {str(i): f"LegalEntity/{e.lower()}" for e, i in erp_companies.items()}
    erp_company = {f"LegalEntity/{e.lower()}": i for e, i in erp_companies.items()}
    return {
        "name": "deal-to-project",
        "entities": {
            "Account": {"owner": "crm"},
            "Opportunity": {"owner": "crm"},
            "Invoice": {"owner": "erp"},
            "RateCard": {"owner": "erp"},
        },
        "sources": [
            {
                "system": "crm",
                "object": "parties",
                "entity": "Account",
                "id": "code",
                "fields": {
                    "name": "name",
                    "country": "country",
                    "vat_id": "tax_identifier",
                    "active": "active",
                },
            },
            {
                "system": "crm",
                "object": "opportunities",
                "entity": "Opportunity",
                "id": "$key",
                "fields": {
                    "name": "description",
                    "account_id": "party | link Account crm parties",
                    "state": "state",
                    "amount": "amount | decimal 4",
                    "currency": "currency",
                    "probability": "probability | mul 100 | round 0 | int",
                    "service_line": "service_line",
                    "legal_entity_id": f"company | map {json.dumps(crm_entity)}",
                    "expected_close": "end_date | date",  # a won deal's: the day it was won
                },
            },
            {
                "system": "erp",
                "object": "rates",
                "entity": "RateCard",
                "id": "$key",
                "fields": {
                    "legal_entity_id": f"company | map {json.dumps(erp_entity)}",
                    "labor_category": "product_code | lower",
                    "currency": "currency",
                    "hourly_rate": "rate | decimal 4",
                    "valid_from": 'start_date | default "1900-01-01" | date',
                    "valid_to": "end_date | date",
                    "changed_by": "changed_by",
                },
            },
            {
                "system": "erp",
                "object": "invoices",
                "entity": "Invoice",
                "id": "$key",
                "fields": {
                    "number": "number",
                    "account_id": "party | link Account erp parties",
                    "issue_date": "invoice_date | date",
                    "currency": "currency",
                    "total": "total_amount | decimal 4",
                    "outstanding_amount": "amount_to_pay | decimal 4",
                    "paid_amount": "total_amount | minus {amount_to_pay} | decimal 4",
                    "status": "state",
                    "due_date": "due_date | date",
                },
            },
        ],
        "targets": [
            {
                "system": "crm",
                "object": "billing_notes",
                "entity": "Account",
                "when": "$key | canonical Account | referenced_by Invoice account_id | gt 0",
                "with": {
                    "account": "$key | canonical Account",
                    "last": f"account | latest_of Invoice account_id issue_date {ISSUED}",
                },
                "fields": {  # amounts per currency: a customer billed by both entities
                    "party": "account | target_key crm parties",
                    "currency": f"account | values_of Invoice account_id currency {ISSUED}"
                    " | join ', '",
                    "invoiced": f"account | sums_by Invoice account_id total currency {ISSUED}",
                    "paid": f"account | sums_by Invoice account_id paid_amount currency {ISSUED}",
                    "outstanding": (
                        f"account | sums_by Invoice account_id outstanding_amount currency {ISSUED}"
                    ),
                    "last_invoice": "last | field_of number",
                    "last_invoice_date": "last | field_of issue_date",
                    "next_due": "account | earliest_of Invoice account_id due_date status posted"
                    " | field_of due_date",
                },
            },
            {
                "system": "erp",
                "object": "parties",
                "entity": "Account",
                "when": (
                    "$key | canonical Account | referenced_by Opportunity account_id state won"
                    " | gt 0"
                ),
                "unwanted": "keep",
                "match": [["vat"], ["name", "country"]],
                "fields": {
                    "name": "name",
                    "vat": "vat_id",
                    "vat_type": 'country | map {"US": "us_ein"} "eu_vat"',
                    "country": "country",
                },
            },
            {
                "system": "erp",
                "object": "projects",
                "entity": "Opportunity",
                "when": "state | equals won",
                "unwanted": "exception",
                "with": {
                    "labor": f"service_line | map {json.dumps(LABOR)}",
                    "rate": "expected_close | in_force RateCard legal_entity_id"
                    " {legal_entity_id} labor_category {labor} currency {currency}",
                },
                "require": {RATED: "rate | is_set"},
                "fields": {
                    "name": "name",
                    "party": "account_id | target_key erp",
                    "company": f"legal_entity_id | map {json.dumps(erp_company)}",
                    "product": "'CONSULT-H'",
                    "list_price": "rate | field_of hourly_rate",
                    "tasks": f"service_line | map {json.dumps(TASKS)}",
                    "invoice_method": f"service_line | map {json.dumps(billing)}",
                },
            },
        ],
    }
