"""The TimeTagger source against a real server: late commits under concurrent writers, soft
deletes, reconciliation, tag metadata, resets, and failures."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.timetagger import TimeTaggerConnector, TimeTaggerSource
from connectors.timetagger.client import TimeTaggerClient, TimeTaggerUnavailable
from connectors.timetagger.localserver import free_port
from connectors.timetagger.tags import hide
from hub.spi import JSON, Change, ConnectorError
from tests.connectors.timetagger.conftest import T0, Account


def read(
    source: TimeTaggerSource, checkpoint: JSON | None, batch_size: int = 100
) -> tuple[list[Change], JSON | None]:
    """Every change after `checkpoint` and the checkpoint after them (JSON round-tripped, as
    ingest stores it)."""
    changes: list[Change] = []
    for batch in source.read(checkpoint, batch_size):
        changes.extend(batch.changes)
        checkpoint = json.loads(json.dumps(batch.checkpoint))
    return changes, checkpoint


# -- polling under concurrent writers ----------------------------------------------------------


def test_concurrent_writers_every_write_is_captured_exactly_once(account: Account) -> None:
    """10 writers x 60 records while the source polls, resuming from every checkpoint: TimeTagger
    stamps `st` before its lock, so stamps arrive out of order; the overlap window (lag) and
    de-duplication capture each write once — a strict cursor lost ~40% here (research notes)."""
    writers, per_writer = 10, 60
    source = account.connector().source()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        client = account.client()
        try:
            for j in range(per_writer):
                key = f"w{w}-{j}"
                item = {
                    "key": key,
                    "t1": T0 + j * 60,
                    "t2": T0 + j * 60 + 30,
                    "ds": f"writer {w} #w{w}",
                    "mt": int(time.time()),
                }
                assert client.put_records([item]).accepted == [key]
        except BaseException as e:  # surfaced by the main thread
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    captured: list[Change] = []
    checkpoint: JSON | None = None
    polls = 0
    deadline = time.monotonic() + 60
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        changes, checkpoint = read(source, checkpoint, batch_size=25)
        captured += changes
        polls += 1
        time.sleep(0.1)
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    for _ in range(2):  # after the writers: what is still inside the window
        changes, checkpoint = read(source, checkpoint, batch_size=25)
        captured += changes
    assert polls >= 3, "the source must have polled while the writers wrote"
    print(f"{writers * per_writer} writes, {polls} polls, {len(captured)} changes")

    final = {r["key"]: r for r in account.api().updates(0).records}
    assert len(final) == writers * per_writer
    counts = Counter(c.key for c in captured)
    assert set(counts) == set(final)
    assert [k for k, n in counts.items() if n != 1] == []
    assert all(c.op == "upsert" and c.record is not None for c in captured)
    assert {c.key: c.record["st"] for c in captured if c.record} == {
        k: r["st"] for k, r in final.items()
    }


def test_a_write_committed_late_inside_the_window_is_read_once(account: Account) -> None:
    """A version whose `st` is below the high-water mark (it committed after a newer stamp was
    read, as TimeTagger's pre-lock `st` allows) is read once if it is inside the lag window,
    and lost outside it (the window's documented limit)."""
    source = account.connector(lag=10).source()
    account.put("a", t1=T0, t2=T0 + 60, ds="first")
    _, checkpoint = read(source, None)
    account.put("b", t1=T0, t2=T0 + 60, ds="late")
    late = account.record("b")
    assert late is not None and checkpoint is not None
    checkpoint["cursor"]["high"] = late["st"] + 5  # a newer stamp was read before b committed
    changes, checkpoint = read(source, checkpoint)
    assert [c.key for c in changes] == ["b"]
    assert read(source, checkpoint)[0] == []

    narrow = account.connector(lag=2).source()
    cursor = {"lag": 2, "high": late["st"] + 5, "seen": {}}
    assert read(narrow, {"version": 1, "cursor": cursor, "reset_floor": None})[0] == []


# -- records -----------------------------------------------------------------------------------


def test_record_fields_position_and_source_time(account: Account) -> None:
    account.put("run", t1=T0, t2=T0, ds="#acme/web running", mt=T0 + 5)
    account.put("done", t1=T0, t2=T0 + 5400, ds="Design #acme/web #billable", mt=T0 + 9)
    changes, _ = read(account.connector().source(), None)
    by_key = {c.key: c for c in changes}
    done = by_key["done"]
    server = account.record("done")
    assert server is not None
    assert done.record == {
        "key": "done",
        "t1": T0,
        "t2": T0 + 5400,
        "ds": "Design #acme/web #billable",
        "mt": float(T0 + 9),
        "st": server["st"],
        "running": False,
        "hidden": False,
        "duration": 5400,
        "person": None,  # the `token` account has no person unless `person` is set
    }
    assert done.position == repr(server["st"])
    assert done.source_time == dt.datetime.fromtimestamp(T0 + 9, dt.UTC)
    run = by_key["run"].record
    assert run is not None and (run["running"], run["duration"]) == (True, 0)


def test_soft_delete_is_a_delete_and_current_keys_reconcile(account: Account) -> None:
    source = account.connector().source()
    for key in ("a", "b", "c"):
        account.put(key, t1=T0, t2=T0 + 60, ds=f"#{key}")
    _, checkpoint = read(source, None)
    assert source.current_keys("records") == {"a", "b", "c"}

    account.put("b", t1=T0, t2=T0 + 60, ds=hide("#b"))
    changes, checkpoint = read(source, checkpoint)
    assert [(c.key, c.op, c.record) for c in changes] == [("b", "delete", None)]
    assert source.current_keys("records") == {"a", "c"}

    account.put("b", t1=T0, t2=T0 + 60, ds="#b back")  # un-hidden in the app
    changes, _ = read(source, checkpoint)
    assert [(c.key, c.op) for c in changes] == [("b", "upsert")]
    assert source.current_keys("records") == {"a", "b", "c"}


def test_a_stale_write_still_moves_st_and_reads_as_the_same_record(account: Account) -> None:
    """TimeTagger answers "accepted" to a write with an older mt, keeps the newer version and
    bumps `st`: the source reads the unchanged record again (ingest drops the repeat)."""
    account.put("a", t1=T0, t2=T0 + 60, ds="kept", mt=T0 + 100)
    source = account.connector().source()
    first, checkpoint = read(source, None)
    account.put("a", t1=T0, t2=T0 + 60, ds="older", mt=T0 + 50)
    again, _ = read(source, checkpoint)
    assert [c.record["ds"] for c in first + again if c.record] == ["kept", "kept"]


# -- tags ----------------------------------------------------------------------------------------


def test_tag_metadata_upserts_and_deletes(account: Account) -> None:
    source = account.connector().source()
    account.put_setting(
        "taginfo #acme/web", {"name": "Acme website", "status": "open", "color": "#ff0000"}
    )
    account.put_setting("taginfo #internal", {"color": "#00ff00"})
    account.put_setting("taginfo #a #b", {"name": "Combination"})
    account.put_setting("width", 3)  # a setting that is not tag metadata
    changes, checkpoint = read(source, None)
    tags = {c.key: c.record for c in changes if c.object == "tags"}
    assert tags == {
        "acme/web": {
            "tag": "acme/web",
            "name": "Acme website",
            "status": "open",
            "info": '{"color": "#ff0000", "name": "Acme website", "status": "open"}',
        },
        "internal": {
            "tag": "internal",
            "name": None,
            "status": None,
            "info": '{"color": "#00ff00"}',
        },
        "a b": {
            "tag": "a b",
            "name": "Combination",
            "status": None,
            "info": '{"name": "Combination"}',
        },
    }
    assert source.current_keys("tags") == {"acme/web", "internal", "a b"}

    account.put_setting("taginfo #acme/web", {"name": "Acme website", "status": "deleted"})
    account.put_setting("taginfo #internal", None)
    changes, _ = read(source, checkpoint)
    assert sorted((c.key, c.op) for c in changes) == [
        ("acme/web", "delete"),
        ("internal", "delete"),
    ]
    assert source.current_keys("tags") == {"a b"}


# -- reset -------------------------------------------------------------------------------------


def test_a_reset_starts_over_once(account: Account) -> None:
    """After TimeTagger's forcereset, `updates` says reset: the source reads everything again,
    once, and then goes on incrementally."""
    source = account.connector(lag=2).source()
    for key in ("a", "b"):
        account.put(key, t1=T0, t2=T0 + 60, ds=key)
    _, checkpoint = read(source, None)
    answer = httpx.put(account.url + "/api/v2/forcereset", headers={"authtoken": account.token})
    assert answer.status_code == 200
    changes, checkpoint = read(source, checkpoint)
    assert sorted(c.key for c in changes) == ["a", "b"]
    assert read(source, checkpoint)[0] == []
    account.put("c", t1=T0, t2=T0 + 60, ds="c")
    changes, checkpoint = read(source, checkpoint)
    assert [c.key for c in changes] == ["c"]
    assert read(source, checkpoint)[0] == []


# -- errors ------------------------------------------------------------------------------------


def test_bad_checkpoints_and_arguments_are_clear_errors(account: Account) -> None:
    source = account.connector().source()
    with pytest.raises(ConnectorError, match="reset this connector's checkpoint"):
        list(source.read({"version": 1, "objects": {}}, 10))
    with pytest.raises(ValueError, match="batch_size"):
        list(source.read(None, 0))
    with pytest.raises(ConnectorError, match="no object 'entries'"):
        source.current_keys("entries")


def test_a_wrong_token_is_refused_without_showing_it(account: Account) -> None:
    secret = account.token[:-6] + "AAAAAA"
    source = TimeTaggerConnector("tracker", account.options(token=secret), None).source()  # type: ignore[arg-type]
    with pytest.raises(ConnectorError) as info:
        list(source.read(None, 10))
    assert "401" in str(info.value) and "check the `token` option" in str(info.value)
    assert secret not in str(info.value)


def test_an_unreachable_server_is_retried_then_unavailable() -> None:
    port = free_port()  # nothing listens there
    client = TimeTaggerClient(f"http://127.0.0.1:{port}/timetagger", "t", backoff=0.01)
    source = TimeTaggerSource("tracker", client, lag=10)
    with pytest.raises(TimeTaggerUnavailable, match=r"cannot reach TimeTagger .*3 attempts"):
        list(source.read(None, 10))


def test_a_503_is_unavailable_with_retry_after() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, headers={"Retry-After": "30"}, text="maintenance")

    client = TimeTaggerClient(
        "http://tt.test/timetagger", "t", transport=httpx.MockTransport(handler)
    )
    with pytest.raises(TimeTaggerUnavailable) as info:
        list(TimeTaggerSource("tracker", client, lag=10).read(None, 10))
    assert (info.value.status, info.value.retry_after) == (503, 30.0)
    assert len(calls) == 1 and calls[0].url.path == "/timetagger/api/v2/updates"
    assert calls[0].headers["authtoken"] == "t"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"url": "http://h/timetagger"}, ["token: required option is missing"]),
        ({"url": "ftp://h", "token": "x"}, ["url: must start with http://"]),
        ({"url": "http://h/timetagger/api/v2", "token": "x"}, ["without /api/v2"]),
        ({"url": "http://h/t", "token": " "}, ["token: is empty"]),
        ({"url": "http://h/t", "token": "x", "lag": -1}, ["lag:"]),
        ({"url": "http://h/t", "token": "x", "lagg": 1}, ["lagg: unknown option", "lag"]),
    ],
)
def test_bad_options_name_the_connector_and_option(
    options: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(ConnectorError) as info:
        TimeTaggerConnector("tracker", options, Path("."))
    message = str(info.value)
    assert "'tracker' (timetagger)" in message
    for part in expected:
        assert part in message


def test_the_token_never_shows_in_reprs_or_option_errors() -> None:
    secret = "s3cr3t-token-value"
    connector = TimeTaggerConnector("tracker", {"url": "http://h/t", "token": secret}, Path("."))
    assert secret not in repr(connector.options) and secret not in repr(connector.client())
    with pytest.raises(ConnectorError) as info:
        TimeTaggerConnector("tracker", {"url": 5, "token": secret}, Path("."))
    assert secret not in str(info.value)
