"""Business indicators on a small firm, checked against values worked out by hand; as of three
past positions they equal what was reported then, also after a rebuild; the CLI shows them."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from hub import indicators
from hub.config import IndicatorSettings
from hub.cutoff import cutoff_of_month, next_cutoff, zone
from hub.types import Delta, ObjectSchema
from projections import backlog
from tests.unit.test_flow import World, _backend  # noqa: F401
from tests.unit.test_valuation import RATE, rate
from tests.unit.test_valuation import mapping as valuation_mapping

BOTH_BACKENDS = True

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)  # a Monday
SETTINGS = IndicatorSettings(exchange_rates={"EUR/USD": Decimal("1.10")})


def _schema(name: str, key: str, *fields: str) -> ObjectSchema:
    return ObjectSchema(
        name,
        key,
        {
            "type": "record",
            "name": name,
            "fields": [
                {"name": f, "type": "string" if f == key else ["null", "string"], "default": None}
                if f != key
                else {"name": f, "type": "string"}
                for f in fields
            ],
        },
    )


PROJECTS = _schema("projects", "code", "code", "name", "status", "billing", "entity", "deal")
COMPANIES = _schema("companies", "code", "code", "name", "currency", "tz")
DEALS = _schema("deals", "id", "id", "name", "state")


def firm_mapping() -> dict[str, Any]:
    doc = valuation_mapping()
    entry = doc["sources"][0]["fields"]
    entry["project_id"] = "text | tag_path 0 | canonical Project"
    entry["task_id"] = "text | tag_path 1"
    for entity in ("Project", "LegalEntity", "Opportunity"):
        doc["entities"][entity] = {"owner": "erp"}
    doc["sources"] += [
        {
            "system": "erp",
            "object": "projects",
            "entity": "Project",
            "id": "code",
            "fields": {
                "code": "code",
                "name": "name",
                "status": "status",
                "billing_method": "billing | default ''",
                "legal_entity_id": "entity | canonical LegalEntity",
                "opportunity_id": "deal | canonical Opportunity",
            },
        },
        {
            "system": "erp",
            "object": "companies",
            "entity": "LegalEntity",
            "id": "code",
            "fields": {
                "name": "name",
                "currency": "currency",
                "timezone": "tz",
                "active": "code | is_set",
            },
        },
        {
            "system": "erp",
            "object": "deals",
            "entity": "Opportunity",
            "id": "id",
            "fields": {"name": "name", "state": "state"},
        },
    ]
    return doc


def firm_world(tmp_path: Path, doc: dict[str, Any] | None = None) -> World:
    """The small firm's World: its mapping (or `doc`) and the ERP objects it reads."""
    world = World(tmp_path, doc or firm_mapping())
    world.erp_src.objects.update(
        {"rates": RATE, "projects": PROJECTS, "companies": COMPANIES, "deals": DEALS}
    )
    return world


@pytest.fixture
def w(tmp_path: Path) -> Any:
    world = firm_world(tmp_path)
    yield world
    world.hub.close()


def seed(w: World) -> None:
    """Two legal entities, three projects (one closed), three deals (two won, one of them
    provisioned), a rate card of 120 EUR/h for design from 2026-11-01, five entries of Ann's."""
    w.person("ANN", "Ann")
    put = w.erp_src.put
    put(
        "companies", "us", {"code": "us", "name": "US", "currency": "USD", "tz": "America/New_York"}
    )
    put("companies", "eu", {"code": "eu", "name": "EU", "currency": "EUR", "tz": "Europe/Paris"})
    project = {"status": "open", "billing": "time", "entity": "us", "deal": None}
    put("projects", "acme", {**project, "code": "acme", "name": "Acme web", "deal": "d1"})
    put(
        "projects",
        "globex",
        {**project, "code": "globex", "name": "Globex", "billing": None, "entity": "eu"},
    )
    put(
        "projects",
        "initech",
        {**project, "code": "initech", "name": "Initech", "status": "done", "billing": None},
    )
    put("deals", "d1", {"id": "d1", "name": "Acme web", "state": "won"})
    put("deals", "d2", {"id": "d2", "name": "Hooli app", "state": "won"})
    put("deals", "d3", {"id": "d3", "name": "Stark", "state": "open"})
    rate(w, "r1", "120", "2026-11-01")
    w.entry("t1", "a #acme/design #approved", 90)  # posted
    w.entry("t2", "b #acme/design #approved", 120)  # refused by the ERP: unposted
    w.entry("t3", "c #globex/design #approved", 30)  # refused by the ERP: unposted
    w.entry("t4", "d #acme/build #approved", 60)  # refused too, and no rate for 'build'
    w.entry("t5", "e #acme/design", 60)  # not approved


def refuse_2h_and_half_hour(delta: Delta) -> str | None:
    """The ERP refuses t2, t3 and t4 (2 h, half an hour, 1 h)."""
    hours = dict(delta.fields).get("hours")
    return "period closed" if hours in (2.0, 0.5, 1.0) else None


def test_the_indicators_of_a_small_firm_are_the_ones_worked_out_by_hand(w: World) -> None:
    seed(w)
    w.erp.reject_when(refuse_2h_and_half_hour)
    w.hub.sync_once()
    got = indicators.indicators(w.hub.store, SETTINGS, now=NOW)
    unposted = got["unposted_time"]
    assert unposted["targets"] == ["erp/lines"]
    assert (unposted["entries"], unposted["hours"]) == (3, "3.5")
    assert unposted["values"] == [{"currency": "EUR", "value": "300.00"}]
    acme, globex = unposted["rows"]
    # t2: 2 h at 120 EUR = 240 EUR = 264 USD at 1.10, and t4's hour without a rate (no value);
    # approved on their day, 2026-11-20 00:00 UTC
    # (3.5 days before NOW); the US cut-off: Nov 30 is the last working day (a Monday), two
    # working days before it is Thursday the 26th, 17:00 in New York = 22:00 UTC
    assert acme == {
        "project_id": "Project/acme",
        "project": "Acme web",
        "legal_entity_id": "LegalEntity/us",
        "entries": 2,
        "hours": "3",
        "values": [{"currency": "EUR", "value": "240.00"}],
        "currency": "USD",
        "converted": "264.00",
        "missing_rates": [],
        "oldest_age_s": 3 * 86400 + 12 * 3600,
        "cutoff": "2026-11-26T17:00:00-05:00",
        "cutoff_in_s": 3 * 86400 + 10 * 3600,
        # October's: Friday the 30th is the last working day, two before it Wednesday the 28th
        "previous_cutoff": "2026-10-28T17:00:00-04:00",
        "oldest_missed_cutoff": False,  # approved on 11-20, after it
    }
    # t3: half an hour = 60 EUR, in the EU entity's own currency; 17:00 in Paris = 16:00 UTC
    assert (globex["hours"], globex["values"], globex["converted"]) == (
        "0.5",
        [{"currency": "EUR", "value": "60.00"}],
        "60.00",
    )
    assert (globex["cutoff"], globex["cutoff_in_s"]) == (
        "2026-11-26T17:00:00+01:00",
        3 * 86400 + 4 * 3600,
    )
    assert got["projects_missing_billing"] == [
        {"project_id": "Project/acme", "project": "Acme web", "reasons": ["no rate in force"]},
        {"project_id": "Project/globex", "project": "Globex", "reasons": ["no billing method"]},
    ]
    assert [d["opportunity_id"] for d in got["deals_not_provisioned"]] == ["Opportunity/d2"]
    assert got["open_exceptions"] == [
        {
            "workflow": "TimeEntry → erp/lines",
            "kind": "write",
            "count": 3,
            "oldest_age_s": got["open_exceptions"][0]["oldest_age_s"],
        }
    ]


@pytest.mark.parametrize("bucket", [1, 2, backlog.BUCKET])
def test_as_of_three_past_positions_equals_what_was_reported_then(
    w: World, bucket: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with waits over many buckets (of 1 or 2 positions)."""
    monkeypatch.setattr(backlog, "BUCKET", bucket)
    seed(w)
    w.erp.reject_when(refuse_2h_and_half_hour)
    w.hub.sync_once()
    reported = [indicators.indicators(w.hub.store, SETTINGS, position=w.hub.store.head())]
    w.erp.reject_when(None)
    w.entry("t2", "b #acme/design #approved", 121)  # a changed entry is written again
    w.hub.sync_once()
    reported.append(indicators.indicators(w.hub.store, SETTINGS, position=w.hub.store.head()))
    w.erp_src.put(
        "projects",
        "hooli",
        {
            "code": "hooli",
            "name": "Hooli",
            "status": "open",
            "billing": "time",
            "entity": "eu",
            "deal": "d2",
        },
    )
    w.entry("t6", "f #hooli/design #approved", 45)
    w.erp.reject_when(lambda d: "closed" if dict(d.fields).get("hours") == 0.75 else None)
    w.hub.sync_once()
    reported.append(indicators.indicators(w.hub.store, SETTINGS, position=w.hub.store.head()))
    counts = [(r["unposted_time"]["entries"], len(r["deals_not_provisioned"])) for r in reported]
    assert counts == [(3, 1), (2, 1), (3, 0)]  # t2 posted; then t6 refused, d2 provisioned
    for then in reported:
        assert indicators.indicators(w.hub.store, SETTINGS, position=then["position"]) == then
    w.hub.projector.rebuild()
    for then in reported:
        assert indicators.indicators(w.hub.store, SETTINGS, position=then["position"]) == then


def test_a_missing_exchange_rate_is_named_not_guessed(w: World) -> None:
    seed(w)
    w.erp.reject_when(refuse_2h_and_half_hour)
    w.hub.sync_once()
    got = indicators.indicators(w.hub.store, IndicatorSettings(), now=NOW)
    acme = got["unposted_time"]["rows"][0]
    assert (acme["converted"], acme["missing_rates"]) == (None, ["EUR/USD"])


def test_cutoffs_by_hand() -> None:
    at = dt.time(17)
    paris = zone("Europe/Paris")
    # January 2027 ends on a Sunday: last working day Friday the 29th, minus 2: the 27th
    assert cutoff_of_month(2027, 1, 2, at, paris) == dt.datetime(2027, 1, 27, 17, tzinfo=paris)
    # after this month's cut-off, the next one is next month's (December 2026: Thursday 29th)
    after = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    assert next_cutoff(after, 2, at, paris) == dt.datetime(2026, 12, 29, 17, tzinfo=paris)
    with pytest.raises(Exception, match="unknown time zone 'Mars/Base'"):
        zone("Mars/Base")


def test_the_cli_prints_the_indicators_and_their_json(w: World) -> None:
    from hub.cli import app

    seed(w)
    w.erp.reject_when(refuse_2h_and_half_hour)
    w.hub.sync_once()
    config = w.tmp / "synchub.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store": {"url": w.hub.settings.store_url},
                "mapping": "mapping.yaml",
                "indicators": {"exchange_rates": {"EUR/USD": 1.1}},
            }
        )
    )
    runner = CliRunner()
    shown = runner.invoke(app, ["-c", str(config), "indicators"], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    assert "Approved time not posted to erp/lines: 3 entries, 3.5 h" in shown.output
    assert "= 264.00 USD" in shown.output
    assert "Globex" in shown.output and "no billing method" in shown.output
    assert "Hooli app" in shown.output
    assert "TimeEntry → erp/lines" in shown.output
    assert max(len(line) for line in shown.output.splitlines()) <= 80
    raw = runner.invoke(app, ["indicators", "-c", str(config), "--json", "--at", "1"])
    assert raw.exit_code == 0, raw.output
    assert json.loads(raw.output)["position"] == 1


def test_an_entry_waits_again_when_approved_again_after_its_line_was_deleted(w: World) -> None:
    seed(w)
    w.hub.sync_once()  # everything posted
    assert waiting(w) == []
    w.entry("t1", "a #acme/design", 90)  # unapproved: its line is deleted; it does not wait
    w.hub.sync_once()
    assert waiting(w) == []
    w.erp.reject_when(lambda d: "period closed")
    w.entry("t1", "a #acme/design #approved", 90)  # approved again, refused: it waits
    w.hub.sync_once()
    assert waiting(w) == ["TimeEntry/t1"]
    w.erp.reject_when(None)
    w.entry("t1", "a #acme/design #approved", 95)
    w.hub.sync_once()
    assert waiting(w) == []
    w.erp.reject_when(lambda d: "period closed")
    w.erp_src.delete("projects", "acme")  # a deleted entry does not wait either
    w.tracker.delete("entries", "t2")
    w.hub.sync_once()
    assert "TimeEntry/t2" not in waiting(w)


def waiting(w: World) -> list[str]:
    with w.hub.store.db.transaction(commit=False) as c:
        return backlog.waiting_at(c, None)


def test_a_deal_written_to_a_target_is_provisioned_from_then_on(tmp_path: Path) -> None:
    """A won deal the hub made a project of (a target rule of Opportunity) is provisioned
    once that write is applied, and was not before, as of then."""
    doc = firm_mapping()
    doc["targets"].append(
        {
            "system": "tracker",  # not the deals' own system (erp), which is never written to
            "object": "made",
            "entity": "Opportunity",
            "when": "state | equals won",
            "fields": {"name": "name"},
        }
    )
    w = firm_world(tmp_path, doc)
    try:
        seed(w)
        w.tracker_sink.reject_when(lambda d: "not yet" if d.object == "made" else None)
        w.hub.sync_once()
        before = w.hub.store.head()
        unprovisioned = indicators.indicators(w.hub.store, SETTINGS)["deals_not_provisioned"]
        assert [d["opportunity_id"] for d in unprovisioned] == ["Opportunity/d2"]
        w.tracker_sink.reject_when(None)
        w.erp_src.put("deals", "d2", {"id": "d2", "name": "Hooli app!", "state": "won"})
        w.hub.sync_once()
        assert indicators.indicators(w.hub.store, SETTINGS)["deals_not_provisioned"] == []
        then = indicators.indicators(w.hub.store, SETTINGS, position=before)
        assert [d["opportunity_id"] for d in then["deals_not_provisioned"]] == ["Opportunity/d2"]
    finally:
        w.hub.close()


def test_the_metrics_endpoint_serves_the_indicators_and_the_pass(w: World) -> None:
    """A real scrape of /metrics on a free local port after a pass."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from hub.metrics import HubMetrics

    seed(w)
    w.erp.reject_when(refuse_2h_and_half_hour)
    report = w.hub.sync_once()
    metrics = HubMetrics()
    metrics.serve(0)
    metrics.record_pass(report, w.hub.store.head(), w.hub.projector.position())
    metrics.record_indicators(indicators.indicators(w.hub.store, SETTINGS, now=NOW))
    text = httpx.get(f"http://127.0.0.1:{metrics.port}/metrics", timeout=10).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    acme = (("legal_entity", "LegalEntity/us"), ("project", "Project/acme"))
    assert samples[("synchub_unposted_hours", acme)] == 3.0
    assert samples[("synchub_unposted_entries", acme)] == 2.0
    assert samples[("synchub_unposted_value", (("currency", "EUR"), *acme))] == 240.0
    assert samples[("synchub_invoice_cutoff_seconds", (("legal_entity", "LegalEntity/us"),))] == (
        3 * 86400 + 10 * 3600
    )
    assert samples[("synchub_deals_not_provisioned", ())] == 1.0
    assert samples[("synchub_projects_missing_billing", ())] == 2.0
    write = (("kind", "write"), ("workflow", "TimeEntry → erp/lines"))
    assert samples[("synchub_open_exceptions", write)] == 3.0
    rejected = (("outcome", "rejected"), ("target", "erp"))
    assert samples[("synchub_writes_total", rejected)] == 3.0
    assert samples[("synchub_writes_total", (("outcome", "applied"), ("target", "erp")))] == 1.0
    tracker = (("connector", "tracker"), ("object", "entries"))
    assert samples[("synchub_changes_captured_total", tracker)] == 5.0
    projects = (("connector", "erp"), ("object", "projects"))
    assert samples[("synchub_changes_captured_total", projects)] == 3.0
    assert samples[("synchub_passes_total", ())] == 1.0
    assert samples[("synchub_pass_duration_seconds_count", ())] == 1.0
    assert samples[("synchub_projection_lag_events", ())] == 0.0
    assert samples[("synchub_store_head_position", ())] == w.hub.store.head()


INVOICES = _schema("invoices", "id", "id", "number", "project", "total", "currency", "state")


def test_sync_latency_per_workflow_and_invoices_held_by_an_exception(tmp_path: Path) -> None:
    doc = firm_mapping()
    doc["entities"]["Invoice"] = {"owner": "erp"}
    doc["sources"].append(
        {
            "system": "erp",
            "object": "invoices",
            "entity": "Invoice",
            "id": "id",
            "fields": {
                "number": "number",
                "project_id": "project | canonical Project",
                "total": "total | decimal 4",
                "currency": "currency",
                "status": "state",
            },
        }
    )
    doc["targets"].append(  # the invoice's status, written where the sales team reads it
        {
            "system": "tracker",
            "object": "invoice_notes",
            "entity": "Invoice",
            "fields": {"number": "number", "status": "status"},
        }
    )
    w = firm_world(tmp_path, doc)
    w.erp_src.objects["invoices"] = INVOICES
    try:
        seed(w)
        w.erp.reject_when(refuse_2h_and_half_hour)
        w.tracker_sink.reject_when(lambda d: "CRM is down" if d.object == "invoice_notes" else None)
        invoice = {"number": "INV-1", "project": "acme", "total": "180", "currency": "EUR"}
        w.erp_src.put("invoices", "i1", {"id": "i1", **invoice, "state": "posted"})
        w.hub.sync_once()
        got = indicators.indicators(w.hub.store, SETTINGS)
        (lat,) = [r for r in got["sync_latency"] if r["workflow"] == "TimeEntry → erp/lines"]
        assert lat["writes"] == 1  # t1; the others were refused
        assert 0 <= lat["p50_s"] <= lat["p95_s"] <= lat["max_s"] < 60
        (held,) = got["invoices_delayed"]
        assert (held["invoice_id"], held["number"], held["held_by"]) == (
            "Invoice/i1",
            "INV-1",
            "Invoice/i1",
        )
        assert held["workflow"] == "Invoice → tracker/invoice_notes"
        assert "CRM is down" in held["exception"]
        w.tracker_sink.reject_when(None)
        w.erp_src.put("invoices", "i1", {"id": "i1", **invoice, "state": "paid"})
        w.hub.sync_once()
        later = indicators.indicators(w.hub.store, SETTINGS)
        assert later["invoices_delayed"] == []
        lat = {r["workflow"]: r["writes"] for r in later["sync_latency"]}
        assert lat == {"Invoice → tracker/invoice_notes": 1, "TimeEntry → erp/lines": 1}
    finally:
        w.hub.close()
