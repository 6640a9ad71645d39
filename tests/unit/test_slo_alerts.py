"""Objectives on business deadlines go met → at risk → breached → met as the clock moves and
the work gets done; each change is one alert, recorded once and delivered signed to a real
local webhook (retried when it fails, sent again with the same id when the process died after
sending it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from hub.config import AlertSettings, IndicatorSettings, ObjectiveSettings, Settings
from hub.store.streams import EventType, alert_stream
from hub.watch import Watch
from tests.alert_receiver import receiver
from tests.unit.test_flow import World, _backend  # noqa: F401
from tests.unit.test_indicators import (
    firm_world,
    refuse_2h_and_half_hour,
    seed,
)

BOTH_BACKENDS = True

WRITES = ObjectiveSettings(
    name="writes", kind="exception_age", exception_kind="write", within="4h", at_risk="2h"
)
DEALS_SLO = ObjectiveSettings(name="deals", kind="deal_provisioned_within", within="1h")
CUTOFF = ObjectiveSettings(name="cutoff", kind="time_posted_before_cutoff", at_risk="2d")


@pytest.fixture
def w(tmp_path: Path) -> Any:
    world = firm_world(tmp_path)
    yield world
    world.hub.close()


def watch(w: World, url: str, *objectives: ObjectiveSettings, **alerts: Any) -> Watch:
    settings = Settings(
        indicators=IndicatorSettings(),
        slos=list(objectives),
        alerts=AlertSettings(webhook=url, secret="s3cret-webhook", base_delay=0, **alerts),
    )
    return Watch(w.hub.store, settings)


def events(w: World, name: str) -> list[tuple[str, dict[str, Any]]]:
    store = w.hub.store
    return [(e.type, store.decode(e)) for e in store.read_stream(alert_stream(name))]  # type: ignore[misc]


def test_an_objective_goes_at_risk_breached_and_met_and_each_change_is_one_alert(w: World) -> None:
    seed(w)
    w.erp.reject_when(refuse_2h_and_half_hour)  # three write exceptions, opened now
    w.hub.sync_once()
    t0 = dt.datetime.now(dt.UTC)
    with receiver() as rec:
        watcher = watch(w, rec.url, WRITES)
        states = [watcher.after_pass(now=t0 + dt.timedelta(hours=h))[1][0] for h in (0, 3, 5, 5)]
        assert [s["state"] for s in states] == ["met", "at_risk", "breached", "breached"]
        assert states[1]["time_left_s"] == pytest.approx(3600, abs=120)  # 4h - 3h
        assert (
            states[2]["reason"] == "3 open write exception(s), the oldest 5h 0m old (limit 4h 0m)"
        )
        assert states[2]["records"] == ["TimeEntry → erp/lines (write)"]
        w.erp.reject_when(None)  # the ERP reopens; the entries are written when they change
        for key, text, minutes in (
            ("t2", "b #acme/design #approved", 121),
            ("t3", "c #globex/design #approved", 31),
            ("t4", "d #acme/build #approved", 61),
        ):
            w.entry(key, text, minutes)
        w.hub.sync_once()
        (after,) = watcher.after_pass(now=t0 + dt.timedelta(hours=6))[1]
        assert after["state"] == "met"
        watcher.close()
    assert rec.states() == [("writes", "at_risk"), ("writes", "breached"), ("writes", "met")]
    assert all(r["signed"] for r in rec.received) and len(rec.received) == 3
    assert rec.received[1]["previous"] == "at_risk" and rec.received[2]["previous"] == "breached"
    recorded = events(w, "writes")
    assert [t for t, _ in recorded] == [EventType.ALERT_RAISED, EventType.ALERT_DELIVERED] * 3
    assert all(d["status"] == "delivered" for t, d in recorded if t == EventType.ALERT_DELIVERED)


def test_deals_and_the_cutoff_objectives_follow_the_clock(w: World) -> None:
    seed(w)
    w.erp.reject_when(refuse_2h_and_half_hour)
    w.hub.sync_once()
    watcher = watch(w, "", DEALS_SLO, CUTOFF)
    # Nov 23: the entries of Nov 20 wait; the US cut-off (Nov 26) is 3 days away: met;
    # Nov 25 noon: 1 day 10 h away: at risk; Dec 1: they missed November's cut-off: breached
    states = {
        day: {s["name"]: s for s in watcher.objectives(now=day)[1]}
        for day in (
            dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC),
        )
    }
    cutoff = [s["cutoff"]["state"] for s in states.values()]
    assert cutoff == ["met", "at_risk", "breached"]
    breached = list(states.values())[2]["cutoff"]
    assert breached["records"] == ["Project/acme", "Project/globex"]
    assert breached["reason"].startswith("3.5 h approved before the last invoice cut-off")
    # the Hooli deal has no known won time: never at risk by age
    assert {s["deals"]["state"] for s in states.values()} == {"met"}
    watcher.close()


def test_a_failing_webhook_is_retried_and_a_lost_one_recorded_as_failed(w: World) -> None:
    seed(w)
    w.erp.reject_when(refuse_2h_and_half_hour)
    w.hub.sync_once()
    t0 = dt.datetime.now(dt.UTC)
    with receiver() as rec:
        rec.fail_next = 2
        watcher = watch(w, rec.url, WRITES, max_attempts=3)
        watcher.after_pass(now=t0 + dt.timedelta(hours=3))
        assert rec.states() == [("writes", "at_risk")]
        rec.fail_next = 5
        watcher.after_pass(now=t0 + dt.timedelta(hours=5))
        watcher.close()
    delivered = [d for t, d in events(w, "writes") if t == EventType.ALERT_DELIVERED]
    assert [(d["status"], d["attempts"]) for d in delivered] == [("delivered", 3), ("failed", 3)]
    assert delivered[1]["detail"] == "HTTP 503"


def test_an_alert_sent_before_a_crash_is_sent_again_with_the_same_id(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after the POST and before recording it: the next pass sends the same
    alert (same id) again, and the store holds it once."""
    import hub.alerts

    seed(w)
    w.erp.reject_when(refuse_2h_and_half_hour)
    w.hub.sync_once()
    t0 = dt.datetime.now(dt.UTC)

    def die(name: str) -> None:
        raise SystemExit(f"killed at {name}")

    with receiver() as rec:
        watcher = watch(w, rec.url, WRITES)
        monkeypatch.setattr(hub.alerts, "crashpoint", die)
        with pytest.raises(SystemExit):
            watcher.after_pass(now=t0 + dt.timedelta(hours=3))
        monkeypatch.undo()
        watcher.after_pass(now=t0 + dt.timedelta(hours=3, minutes=1))
        watcher.close()
    assert len(rec.ids()) == 2 and len(set(rec.ids())) == 1  # the same alert, twice
    assert [t for t, _ in events(w, "writes")] == [
        EventType.ALERT_RAISED,
        EventType.ALERT_DELIVERED,
    ]
