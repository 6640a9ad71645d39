"""Valuations: a time entry's hours at the rate card in force on its day, now and as of a past
position; a rate corrected later revalues the entries it applies to from then on; the
rule's problems are clear; a rebuild changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub import valuation
from hub.errors import MappingSpecError, SyncHubError
from hub.mapping import Mapping
from hub.types import ObjectSchema
from tests.unit.test_flow import MAPPING, World, _backend  # noqa: F401

BOTH_BACKENDS = True

RATE = ObjectSchema(
    "rates",
    "id",
    {
        "type": "record",
        "name": "rate",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "category", "type": "string"},
            {"name": "rate", "type": "string"},
            {"name": "start", "type": "string"},
            {"name": "end", "type": ["null", "string"], "default": None},
        ],
    },
)

VALUATION = {
    "entity": "TimeEntry",
    "when": "approved",
    "with": {"category": "task_id | default standard"},
    "hours": "minutes | div 60",
    "rate": "date | in_force RateCard labor_category {category}",
}


def mapping(**rule: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(MAPPING))
    doc["entities"]["RateCard"] = {"owner": "erp"}
    doc["sources"].append(
        {
            "system": "erp",
            "object": "rates",
            "entity": "RateCard",
            "id": "id",
            "fields": {
                "labor_category": "category",
                "currency": "'EUR'",
                "hourly_rate": "rate | decimal 4",
                "valid_from": "start | date",
                "valid_to": "end | date",
            },
        }
    )
    doc["valuations"] = [{**VALUATION, **rule}]
    return doc


@pytest.fixture
def w(tmp_path: Path) -> Any:
    world = World(tmp_path, mapping())
    world.erp_src.objects["rates"] = RATE
    yield world
    world.hub.close()


def rate(w: World, key: str, value: str, start: str, end: str | None = None) -> None:
    row = {"id": key, "category": "design", "rate": value, "start": start, "end": end}
    w.erp_src.put("rates", key, row)


def test_hours_are_valued_at_the_rate_in_force_on_their_day(w: World) -> None:
    w.person("ANN", "Ann")
    rate(w, "r1", "100", "2026-01-01", "2026-11-19")  # ended the day before the entries
    rate(w, "r2", "120", "2026-11-20")
    w.entry("t1", "x #acme/design #approved", 90)
    w.entry("t2", "y #acme/design #approved", 30)
    w.entry("t3", "z #acme/design", 60)  # not approved: not valued
    w.entry("t4", "q #acme/build #approved", 60)  # no rate for 'build'
    w.hub.sync_once()
    got = valuation.valuations(w.hub.store)
    rows = {r["canonical_id"]: r for r in got["entries"]}
    assert set(rows) == {"TimeEntry/t1", "TimeEntry/t2", "TimeEntry/t4"}
    assert rows["TimeEntry/t1"] | {"date": None} == {
        "canonical_id": "TimeEntry/t1",
        "date": None,
        "hours": "1.5",
        "rate_id": "RateCard/r2",
        "hourly_rate": "120.0000",
        "currency": "EUR",
        "value": "180.00",
        "problem": None,
    }
    assert rows["TimeEntry/t2"]["value"] == "60.00"
    assert rows["TimeEntry/t4"]["value"] is None
    assert rows["TimeEntry/t4"]["problem"] == "no rate in force"
    assert got["totals"] == [{"currency": "EUR", "entries": 2, "hours": "2", "value": "240.00"}]
    assert got["unvalued"] == 1
    only = valuation.valuations(w.hub.store, rate_id="RateCard/r2")["entries"]
    assert [r["canonical_id"] for r in only] == ["TimeEntry/t1", "TimeEntry/t2"]
    assert valuation.valuations(w.hub.store, rate_id="RateCard/r1")["entries"] == []
    assert valuation.rate_entities(w.hub.store) == {"RateCard": "TimeEntry"}


def test_a_corrected_rate_revalues_from_then_on_and_as_of_shows_before(w: World) -> None:
    w.person("ANN", "Ann")
    rate(w, "r2", "120", "2026-11-01")
    w.entry("t1", "x #acme/design #approved", 90)
    w.hub.sync_once()
    before = w.hub.store.head()
    rate(w, "r2", "130", "2026-11-01")  # finance corrects the rate
    w.hub.sync_once()
    now = valuation.valuations(w.hub.store, canonical_id="TimeEntry/t1")["entries"]
    assert [(r["hourly_rate"], r["value"]) for r in now] == [("130.0000", "195.00")]
    then = valuation.valuations(w.hub.store, canonical_id="TimeEntry/t1", position=before)
    assert [(r["hourly_rate"], r["value"]) for r in then["entries"]] == [("120.0000", "180.00")]
    assert then["position"] == before
    w.hub.projector.rebuild()  # computed from the audit trail: a rebuild changes nothing
    again = valuation.valuations(w.hub.store, canonical_id="TimeEntry/t1", position=before)
    assert again["entries"] == then["entries"]


def test_an_entity_the_mapping_does_not_value_says_how_to_value_it(w: World) -> None:
    w.hub.sync_once()
    with pytest.raises(SyncHubError, match="does not value Person: add a `valuations` rule"):
        valuation.valuations(w.hub.store, "Person")


def test_a_malformed_valuation_rule_is_refused_with_its_path() -> None:
    doc = mapping(hours="minuts | div 60")
    doc["valuations"].append(dict(VALUATION))
    from hub.schemas import canonical_fields

    with pytest.raises(MappingSpecError) as err:
        Mapping.from_dict(doc, known_entities=canonical_fields())
    text = str(err.value)
    assert "valuations[0].hours: TimeEntry has no field 'minuts'" in text
    assert "valuations[1]: TimeEntry is already valued by valuations[0]" in text


def test_the_cli_lists_valuations_with_totals(w: World, tmp_path: Path) -> None:
    from hub.cli import app

    w.person("ANN", "Ann")
    rate(w, "r2", "120", "2026-11-01")
    w.entry("t1", "x #acme/design #approved", 90)
    w.hub.sync_once()
    config = tmp_path / "synchub.yaml"
    config.write_text(f"store: {{url: '{w.hub.settings.store_url}'}}\nmapping: mapping.yaml\n")
    result = CliRunner().invoke(app, ["valuation", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["totals"] == [{"currency": "EUR", "entries": 1, "hours": "1.5", "value": "180.00"}]
    shown = CliRunner().invoke(app, ["valuation", "--config", str(config)], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    assert "TimeEntry/t1" in shown.output and "180.00" in shown.output
    assert max(len(line) for line in shown.output.splitlines()) <= 80
