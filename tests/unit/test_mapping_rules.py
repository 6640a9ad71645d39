"""Target-rule features for business rules: `with` values, conditional `require` checks,
`{field}` arguments, `le` and `in_force` (effective-dated entities)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from hub.errors import MappingError, MappingSpecError
from hub.mapping import Mapping
from tests.unit.test_mapping import FakeLookup, run, spec_error

RATES = {
    "RateCard/eu/senior/EUR/2026-01-01": {
        "legal_entity_id": "LegalEntity/eu",
        "labor_category": "senior",
        "currency": "EUR",
        "hourly_rate": "130",
        "valid_from": "2026-01-01",
        "valid_to": None,
    },
    "RateCard/eu/senior/EUR/2026-07-01": {
        "legal_entity_id": "LegalEntity/eu",
        "labor_category": "senior",
        "currency": "EUR",
        "hourly_rate": "140",
        "valid_from": "2026-07-01",
        "valid_to": "2026-12-31",
    },
    "RateCard/us/senior/USD/2026-01-01": {
        "legal_entity_id": "LegalEntity/us",
        "labor_category": "senior",
        "currency": "USD",
        "hourly_rate": "150",
        "valid_from": None,
        "valid_to": None,
    },
}


def rates() -> FakeLookup:
    lookup = FakeLookup()
    lookup.entities = dict(RATES)
    return lookup


RATE = "date | in_force RateCard legal_entity_id {legal} labor_category senior currency {cur}"


@pytest.mark.parametrize(
    ("day", "legal", "cur", "expected"),
    [
        ("2026-03-02", "LegalEntity/eu", "EUR", "RateCard/eu/senior/EUR/2026-01-01"),
        ("2026-07-01", "LegalEntity/eu", "EUR", "RateCard/eu/senior/EUR/2026-07-01"),
        (dt.date(2026, 12, 31), "LegalEntity/eu", "EUR", "RateCard/eu/senior/EUR/2026-07-01"),
        # past the later card's end the earlier, open-ended one is in force again
        ("2027-01-04", "LegalEntity/eu", "EUR", "RateCard/eu/senior/EUR/2026-01-01"),
        ("2025-12-31", "LegalEntity/eu", "EUR", None),  # before any card
        ("2020-01-01", "LegalEntity/us", "USD", "RateCard/us/senior/USD/2026-01-01"),
        ("2026-03-02", "LegalEntity/eu", "USD", None),  # no rate in that currency
    ],
)
def test_in_force_picks_the_latest_card_valid_on_the_date(
    day: Any, legal: str, cur: str, expected: str | None
) -> None:
    record = {"date": day, "legal": legal, "cur": cur}
    assert run(RATE, record, lookup=rates()) == expected


def test_in_force_then_field_of_gives_the_rate() -> None:
    record = {"date": "2026-08-03", "legal": "LegalEntity/eu", "cur": "EUR"}
    assert run(RATE + " | field_of hourly_rate", record, lookup=rates()) == "140"


def test_in_force_handles_none_and_refuses_what_is_no_date() -> None:
    assert run(RATE, {"legal": "LegalEntity/eu", "cur": "EUR"}, lookup=rates()) is None
    assert run(RATE, {"date": "2026-03-02", "cur": "EUR"}, lookup=rates()) is None
    with pytest.raises(MappingError, match=r"step 'in_force' needs a date but got 'soon'"):
        run(RATE, {"date": "soon", "legal": "LegalEntity/eu", "cur": "EUR"}, lookup=rates())


def test_conditions_come_in_pairs() -> None:
    assert "'currency' has no value: conditions come as FIELD VALUE pairs" in spec_error(
        "date | in_force RateCard labor_category senior currency"
    )
    assert "has no value" in spec_error("a | sum_of TimeEntry person_id minutes date")


def test_sum_of_with_field_arguments_sums_one_person_day() -> None:
    lookup = FakeLookup()
    lookup.entities = {
        "TimeEntry/1": {"person_id": "Person/ana", "date": "2026-11-30", "minutes": 360},
        "TimeEntry/2": {"person_id": "Person/ana", "date": "2026-11-30", "minutes": 300},
        "TimeEntry/3": {"person_id": "Person/ana", "date": "2026-12-01", "minutes": 480},
        "TimeEntry/4": {"person_id": "Person/bo", "date": "2026-11-30", "minutes": 600},
    }
    day = "person_id | sum_of TimeEntry person_id minutes date {date}"
    record = {"person_id": "Person/ana", "date": dt.date(2026, 11, 30)}
    assert run(day, record, lookup=lookup) == Decimal(660)
    assert run(day + " | div 60 | le 10", record, lookup=lookup) is False
    assert run(day + " | div 60 | le {cap}", {**record, "cap": "11"}, lookup=lookup) is True
    assert run(day + " | le {cap}", record, lookup=lookup) is True  # no cap: no limit


def test_le_and_gt_read_their_bound_from_the_record() -> None:
    assert run("a | le 10", {"a": 10}) is True
    assert run("a | le 10", {"a": Decimal("10.01")}) is False
    assert run("a | le 10", {}) is False
    assert run("a | gt {b}", {"a": 3, "b": 2}) is True
    assert run("a | gt {b}", {"a": 3, "b": "3.5"}) is False
    with pytest.raises(MappingError, match=r"the bound \{b\} is empty"):
        run("a | gt {b}", {"a": 3})
    with pytest.raises(MappingError, match=r"the bound \{b\}: cannot convert 'x'"):
        run("a | le {b}", {"a": 3, "b": "x"})
    assert "N must be a finite number or {field}" in spec_error("a | le ten")


DOC: dict[str, Any] = {
    "name": "billing",
    "entities": {"TimeEntry": {"owner": "tracker"}},
    "targets": [
        {
            "system": "erp",
            "object": "timesheet_lines",
            "entity": "TimeEntry",
            "with": {
                "legal": "project_id | field_of legal_entity_id",
                "cap": "legal | field_of max_hours_per_day",
                "day_hours": "person_id | sum_of TimeEntry person_id minutes date {date} | div 60",
            },
            "require": {
                "the project belongs to a legal entity": "legal | is_set",
                "at most the legal entity's hours per person per day": {
                    "when": "cap | is_set",
                    "check": "day_hours | le {cap}",
                },
            },
            "fields": {"hours": "minutes | div 60 | round 2", "entity": "legal"},
        }
    ],
}


def billing_lookup() -> FakeLookup:
    lookup = FakeLookup()
    lookup.entities = {
        "Project/p-eu": {"legal_entity_id": "LegalEntity/eu"},
        "Project/p-us": {"legal_entity_id": "LegalEntity/us"},
        "LegalEntity/eu": {"max_hours_per_day": "10"},
        "LegalEntity/us": {"max_hours_per_day": None},
        "TimeEntry/1": {"person_id": "Person/ana", "date": "2026-11-30", "minutes": 420},
        "TimeEntry/2": {"person_id": "Person/ana", "date": "2026-11-30", "minutes": 240},
    }
    return lookup


def entry(project: str) -> dict[str, Any]:
    return {"person_id": "Person/ana", "date": "2026-11-30", "minutes": 240, "project_id": project}


def test_with_values_feed_the_checks_and_the_fields() -> None:
    rule = Mapping.from_dict(DOC).outbound("TimeEntry")[0]
    lookup = billing_lookup()
    eu = rule.extended(entry("Project/p-eu"), "2", lookup)
    assert eu["legal"] == "LegalEntity/eu" and eu["day_hours"] == 11
    assert rule.refusals(eu, "2", lookup) == ["at most the legal entity's hours per person per day"]
    us = rule.extended(entry("Project/p-us"), "2", lookup)
    assert rule.refusals(us, "2", lookup) == []  # the US entity has no cap: the check is off
    assert rule.apply(us, "2", lookup) == {"hours": Decimal("4.00"), "entity": "LegalEntity/us"}
    nowhere = rule.extended(entry("Project/gone"), "2", lookup)
    assert rule.refusals(nowhere, "2", lookup) == ["the project belongs to a legal entity"]
    # `with` values are not canonical fields: the rule reads them without a schema complaint
    Mapping.from_dict(
        DOC, known_entities={"TimeEntry": ["person_id", "date", "minutes", "project_id"]}
    )


def test_a_failing_with_value_names_itself() -> None:
    doc = {**DOC, "targets": [{**DOC["targets"][0], "with": {"n": "minutes | int"}}]}
    rule = Mapping.from_dict(doc).outbound("TimeEntry")[0]
    with pytest.raises(MappingError, match=r"^field with\.n: step 'int'"):
        rule.extended({"minutes": "lots"}, "1", billing_lookup())


def test_conditional_checks_are_checked_like_the_rest() -> None:
    bad = {
        **DOC,
        "targets": [{**DOC["targets"][0], "require": {"x": {"when": "cap | is_set", "chek": "a"}}}],
    }
    with pytest.raises(MappingSpecError, match=r"targets\[0\]\.require\.x"):
        Mapping.from_dict(bad)
    wrong = {
        **DOC,
        "targets": [
            {**DOC["targets"][0], "require": {"x": {"when": "cap | is_set", "check": "a | nope"}}}
        ],
    }
    with pytest.raises(MappingSpecError, match=r"targets\[0\]\.require\.x\.check: unknown step"):
        Mapping.from_dict(wrong)


def test_with_values_are_computed_in_the_order_they_read_each_other() -> None:
    let = {"cap": "legal | field_of max_hours_per_day", "legal": "project_id | field_of x"}
    doc = {**DOC, "targets": [{**DOC["targets"][0], "with": let, "require": {}}]}
    rule = Mapping.from_dict(doc).outbound("TimeEntry")[0]
    assert [name for name, _ in rule.let] == ["legal", "cap"]
    circle = {"a": "b | is_set", "b": "a | is_set"}
    doc = {**DOC, "targets": [{**DOC["targets"][0], "with": circle}]}
    with pytest.raises(MappingSpecError, match=r"with: a, b read each other in a circle"):
        Mapping.from_dict(doc)


def test_latest_of_finds_the_last_invoice_and_minus_subtracts_exactly() -> None:
    lookup = FakeLookup()
    lookup.entities = {
        "Invoice/1": {"account_id": "Account/a", "issue_date": "2026-11-02", "status": "paid"},
        "Invoice/2": {"account_id": "Account/a", "issue_date": "2026-11-30", "status": "posted"},
        "Invoice/3": {"account_id": "Account/a", "issue_date": "2026-12-01", "status": "draft"},
        "Invoice/4": {"account_id": "Account/a", "issue_date": None, "status": "posted"},
        "Invoice/5": {"account_id": "Account/b", "issue_date": "2027-01-01", "status": "posted"},
    }
    last = 'a | latest_of Invoice account_id issue_date status ["posted", "paid"]'
    assert run(last, {"a": "Account/a"}, lookup=lookup) == "Invoice/2"
    assert run(
        "a | latest_of Invoice account_id issue_date", {"a": "Account/a"}, lookup=lookup
    ) == ("Invoice/3")
    assert run(last, {"a": "Account/c"}, lookup=lookup) is None
    assert run(last, {}, lookup=lookup) is None
    assert run("t | minus {p}", {"t": "975.00", "p": "500.5"}) == Decimal("474.50")
    assert run("t | minus {p}", {"t": 10}) == Decimal(10)  # nothing to pay: None counts as 0
    assert run("t | minus 0.25", {"t": "1"}) == Decimal("0.75")


def test_latest_of_orders_numbers_by_value_not_as_text() -> None:
    lookup = FakeLookup()
    lookup.entities = {
        "Invoice/a": {"account_id": "Account/a", "sequence": 9},
        "Invoice/b": {"account_id": "Account/a", "sequence": 10},
        "Invoice/c": {"account_id": "Account/a", "sequence": Decimal("2.5")},
        "Invoice/d": {"account_id": "Account/a", "sequence": None},
    }
    got = run("a | latest_of Invoice account_id sequence", {"a": "Account/a"}, lookup=lookup)
    assert got == "Invoice/b"  # as text "9" > "10"


def test_a_field_from_a_with_value_is_not_a_canonical_field() -> None:
    """Ownership is by canonical field: a target field computed from a `with` value (named
    like a canonical field or not) is never taken as the target's own field."""
    rule = Mapping.from_dict(DOC).outbound("TimeEntry")[0]
    assert rule.source_fields() == {"hours": "minutes", "entity": None}


def test_values_of_lists_the_people_assigned_and_id_part_strips_the_entity() -> None:
    lookup = FakeLookup()
    lookup.entities = {
        "Assignment/1": {"project_id": "Project/p", "person_id": "Person/bob", "active": True},
        "Assignment/2": {"project_id": "Project/p", "person_id": "Person/alice", "active": True},
        "Assignment/3": {"project_id": "Project/p", "person_id": "Person/bob", "active": True},
        "Assignment/4": {"project_id": "Project/p", "person_id": "Person/carl", "active": False},
        "Assignment/5": {"project_id": "Project/q", "person_id": "Person/dora", "active": True},
        "Assignment/6": {"project_id": "Project/p", "person_id": None, "active": True},
    }
    people = "p | values_of Assignment project_id person_id active true | id_part"
    assert run(people, {"p": "Project/p"}, lookup=lookup) == ["alice", "bob"]
    assert run(people, {"p": "Project/x"}, lookup=lookup) == []
    assert run("p | id_part", {"p": "Person/a/b"}) == "a/b"
    with pytest.raises(MappingError, match="is not a canonical id"):
        run("p | id_part", {"p": "alice"})


def test_earliest_of_finds_the_next_unpaid_due_date() -> None:
    lookup = FakeLookup()
    lookup.entities = {
        "Invoice/1": {"account_id": "Account/a", "due_date": "2026-10-01", "status": "paid"},
        "Invoice/2": {"account_id": "Account/a", "due_date": "2026-12-15", "status": "posted"},
        "Invoice/3": {"account_id": "Account/a", "due_date": "2026-11-20", "status": "posted"},
        "Invoice/4": {"account_id": "Account/a", "due_date": None, "status": "posted"},
    }
    due = "a | earliest_of Invoice account_id due_date status posted"
    assert run(due, {"a": "Account/a"}, lookup=lookup) == "Invoice/3"  # undated ones left out
    assert run(due, {"a": "Account/b"}, lookup=lookup) is None
    assert run(due, {}, lookup=lookup) is None


def test_sums_by_gives_an_amount_per_currency_and_join_a_list_as_text() -> None:
    lookup = FakeLookup()
    lookup.entities = {
        "Invoice/1": {
            "account_id": "Account/a",
            "total": "2835",
            "currency": "EUR",
            "status": "paid",
        },
        "Invoice/2": {
            "account_id": "Account/a",
            "total": "2700",
            "currency": "USD",
            "status": "posted",
        },
        "Invoice/3": {
            "account_id": "Account/a",
            "total": "100.5",
            "currency": "USD",
            "status": "posted",
        },
        "Invoice/4": {
            "account_id": "Account/a",
            "total": "9",
            "currency": "USD",
            "status": "draft",
        },
    }
    sums = 'a | sums_by Invoice account_id total currency status ["posted", "paid"]'
    assert run(sums, {"a": "Account/a"}, lookup=lookup) == "2835.00 EUR; 2800.50 USD"
    assert run(sums, {"a": "Account/b"}, lookup=lookup) is None
    assert run("c | join ', '", {"c": ["EUR", "USD"]}) == "EUR, USD"
