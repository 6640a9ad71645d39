"""The TimeTagger sink against a real server: verified writes, stale writes, idempotent creates,
tag edits, soft deletes, tag metadata, and faults injected with httpx.MockTransport."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.timetagger import TimeTaggerSink
from connectors.timetagger.client import TimeTaggerClient, parse_retry_after
from connectors.timetagger.sink import STALE, create_key_for, record_key_for
from connectors.timetagger.tags import ELLIPSIS, find_tags
from hub.spi import Delta, Outcome
from tests.connectors.timetagger.conftest import T0, Account, delta


def sink_of(account: Account) -> TimeTaggerSink:
    return account.connector().sink()


def one(sink: TimeTaggerSink, d: Delta) -> Outcome:
    (outcome,) = sink.apply([d])
    assert outcome.idempotency_key == d.idempotency_key
    return outcome


ENTRY: dict[str, Any] = {"t1": T0, "t2": T0 + 3600, "ds": "Workshop #acme/web #billable"}


# -- creates -----------------------------------------------------------------------------------


def test_a_create_gets_a_key_derived_from_its_canonical_id(account: Account) -> None:
    sink = sink_of(account)
    create = delta("create", ENTRY, key="k-1")
    outcome = one(sink, create)
    assert outcome.status == "applied" and outcome.target_key == create_key_for(create)
    record = account.record(create_key_for(create))
    assert record is not None
    assert {k: record[k] for k in ENTRY} == ENTRY
    assert outcome.details["st"] == record["st"] and outcome.details["mt"] == record["mt"]

    # A retry of the same create (e.g. after a lost answer) finds it by key and writes
    # nothing, in this sink or in a new one (after a restart).
    for again in (sink, sink_of(account)):
        assert one(again, create) == Outcome(
            "k-1", "applied", record["key"], details={"written": False}
        )
    assert sink.writes == 1


class _AnswerLost(httpx.BaseTransport):
    """Talks to the real server, but the answer to every PUT is lost after the server applied
    it (the hub sees a timeout)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "PUT":
            response.read()
            raise httpx.ReadTimeout("timed out (answer lost)", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_new_create_after_a_lost_answer_finds_the_record_instead_of_a_second_one(
    account: Account,
) -> None:
    """The first create landed but its answer was lost; the planner later plans a new create
    for the same entity with another desired state (another idempotency key), after a person
    edited the record: no second record, the one record converges to the new create."""
    lossy = TimeTaggerClient(account.url, account.token, retries=0, transport=_AnswerLost())
    first = delta("create", ENTRY, key="k-1", canonical_id="TimeEntry/7")
    lost = one(TimeTaggerSink("tracker", lossy), first)
    assert lost.status == "retryable" and "ReadTimeout" in (lost.reason or "")
    (landed,) = account.api().updates(0).records
    account.put(landed["key"], t1=T0, t2=T0 + 3600, ds="Workshop (edited by a person)")

    wanted = {**ENTRY, "t2": T0 + 5400}
    later = delta("create", wanted, key="k-2", canonical_id="TimeEntry/7")
    outcome = one(sink_of(account), later)
    assert (outcome.status, outcome.target_key) == ("applied", landed["key"])
    (record,) = account.api().updates(0).records
    assert {k: record[k] for k in wanted} == wanted

    # Deleted (hidden) meanwhile: a create of the entity makes it again from its fields.
    assert one(sink_of(account), delta("delete", {}, target_key=landed["key"])).status == (
        "applied"
    )
    again = delta("create", ENTRY, key="k-3", canonical_id="TimeEntry/7")
    assert one(sink_of(account), again).status == "applied"
    (record,) = account.api().updates(0).records
    assert {k: record[k] for k in ENTRY} == ENTRY


def test_a_retried_create_finds_a_record_made_under_the_older_key_scheme(
    account: Account,
) -> None:
    create = delta("create", ENTRY, key="k-old")
    account.put(record_key_for("k-old"), t1=T0, t2=T0 + 3600, ds=ENTRY["ds"])
    outcome = one(sink_of(account), create)
    assert (outcome.status, outcome.target_key) == ("applied", record_key_for("k-old"))
    assert outcome.details == {"written": False}
    assert len(account.api().updates(0).records) == 1


def test_a_create_without_times_or_with_bad_fields_is_rejected(account: Account) -> None:
    sink = sink_of(account)
    outcomes = sink.apply(
        [
            delta("create", {"ds": "no times"}),
            delta("create", {"t1": T0 + 60, "t2": T0, "ds": "ends before it starts"}),
            delta("create", {"t1": "9am", "t2": T0, "ds": "x"}),
            delta("create", {**ENTRY, "project": "acme"}),
            delta("create", {**ENTRY, "add_tags": 5}),
            delta("create", {**ENTRY, "add_tags": ["not a tag!"]}),
            delta("update", {"ds": "x"}),
            delta("delete", {}),
        ]
    )
    reasons = [o.reason or "" for o in outcomes]
    assert [o.status for o in outcomes] == ["rejected"] * 8
    assert "`t1` must be whole unix seconds" in reasons[0] and "needs t1 and t2" in reasons[0]
    assert "is after t2" in reasons[1]
    assert "`t1` must be whole unix seconds" in reasons[2]
    assert "have no fields ['project']" in reasons[3] and "#tags in `ds`" in reasons[3]
    assert "`add_tags` must be a list" in reasons[4]
    assert "is not a TimeTagger tag" in reasons[5]
    assert "no target_key" in reasons[6] and "no target_key" in reasons[7]
    assert account.api().updates(0).records == []


def test_a_description_of_256_characters_is_rejected_in_timetaggers_words(
    account: Account,
) -> None:
    sink = sink_of(account)
    too_long, fits = "x" * 256, "y" * 255
    outcomes = sink.apply(
        [
            delta("create", {**ENTRY, "ds": too_long}, canonical_id="TimeEntry/1"),
            delta("create", {**ENTRY, "ds": fits}, canonical_id="TimeEntry/2"),
        ]
    )
    assert [o.status for o in outcomes] == ["rejected", "applied"]
    assert "String values must be less than 256 chars" in (outcomes[0].reason or "")
    assert [r["ds"] for r in account.api().updates(0).records] == [fits]


# -- updates -----------------------------------------------------------------------------------


def test_an_update_merges_into_the_current_record_and_is_verified(account: Account) -> None:
    account.put("abcdefgh", t1=T0, t2=T0 + 600, ds="Call with client #acme")
    sink = sink_of(account)
    outcome = one(sink, delta("update", {"t2": T0 + 900}, target_key="abcdefgh"))
    assert outcome.status == "applied" and outcome.target_key == "abcdefgh"
    record = account.record("abcdefgh")
    assert record is not None
    assert (record["t1"], record["t2"], record["ds"]) == (T0, T0 + 900, "Call with client #acme")
    # Already holding the fields: applied without a write (state-based idempotency).
    again = one(sink, delta("update", {"t2": T0 + 900}, target_key="abcdefgh", key="other"))
    assert again.status == "applied" and again.details == {"written": False}
    assert sink.writes == 1
    assert (account.record("abcdefgh") or {})["st"] == record["st"]


def test_an_update_writes_an_mt_above_the_current_one(account: Account) -> None:
    """TimeTagger keeps the larger mt: a record a client stamped in the future is still
    overwritten, because the sink writes mt = current mt + 1."""
    future = int(time.time()) + 3600
    account.put("k", t1=T0, t2=T0 + 60, ds="from a fast clock", mt=future)
    outcome = one(sink_of(account), delta("update", {"ds": "fixed"}, target_key="k"))
    assert outcome.status == "applied"
    record = account.record("k")
    assert record is not None and (record["ds"], record["mt"]) == ("fixed", future + 1)


def test_marking_sync_error_with_add_and_remove_tags(account: Account) -> None:
    """How the hub marks a refused time entry: add a tag to the description, keeping the
    person's text; removing it later restores the text."""
    account.put("entry1", t1=T0, t2=T0 + 600, ds="Design review #acme/web")
    sink = sink_of(account)
    mark = delta("update", {"add_tags": ["#sync-error"]}, target_key="entry1")
    assert one(sink, mark).status == "applied"
    assert (account.record("entry1") or {})["ds"] == "Design review #acme/web #sync-error"
    assert one(
        sink, delta("update", {"add_tags": "sync-error"}, target_key="entry1", key="again")
    ).details == {"written": False}
    clear = delta("update", {"remove_tags": ["sync-error"]}, target_key="entry1")
    assert one(sink, clear).status == "applied"
    assert (account.record("entry1") or {})["ds"] == "Design review #acme/web"
    assert sink.writes == 2


def test_a_flag_reaches_a_record_that_ends_before_it_starts(account: Account) -> None:
    """TimeTagger holds records with t2 < t1 (a typo in the app); such an entry is exactly one
    the hub refuses and flags. A tag edit changes only the description, so only that is
    checked: the flag is set and cleared, the times left as they are. A write that changes
    the times is still checked."""
    account.put("backwards", t1=T0 + 3600, t2=T0, ds="Sprint planning #acme/web")
    sink = sink_of(account)
    flag = one(sink, delta("update", {"add_tags": ["sync-error"]}, target_key="backwards"))
    assert flag.status == "applied", flag.reason
    record = account.record("backwards") or {}
    assert (record["t1"], record["t2"]) == (T0 + 3600, T0)
    assert record["ds"] == "Sprint planning #acme/web #sync-error"
    unflag = one(sink, delta("update", {"remove_tags": ["sync-error"]}, target_key="backwards"))
    assert unflag.status == "applied", unflag.reason
    assert (account.record("backwards") or {})["ds"] == "Sprint planning #acme/web"
    times = one(sink, delta("update", {"t1": T0 + 7200}, target_key="backwards"))
    assert times.status == "rejected" and "is after t2" in (times.reason or "")


def test_a_flag_that_would_not_fit_shortens_the_free_text_keeps_every_tag_and_says_so(
    account: Account,
) -> None:
    """A description of 250 characters has no room for ' #sync-error': the flag cuts the
    person's free text (ending in an ellipsis), keeps every #tag, and the applied outcome
    says the description was shortened. Unflagging then removes only the tag."""
    tags = " #acme/web #billable"
    text = "Workshop with the client about the relaunch: " + "notes on the navigation " * 10
    ds = text[: 250 - len(tags)] + tags
    assert len(ds) == 250
    account.put("long", t1=T0, t2=T0 + 3600, ds=ds)
    sink = sink_of(account)
    flag = one(sink, delta("update", {"add_tags": ["sync-error"]}, target_key="long"))
    assert flag.status == "applied", flag.reason
    assert "description was shortened to fit" in (flag.reason or "")
    flagged = (account.record("long") or {})["ds"]
    assert len(flagged) < 256
    assert find_tags(flagged) == ["acme/web", "billable", "sync-error"]
    assert flagged.startswith("Workshop with the client about the relaunch: notes")
    assert flagged.endswith(f"{ELLIPSIS} #acme/web #billable #sync-error")
    again = one(sink, delta("update", {"add_tags": ["sync-error"]}, target_key="long", key="2"))
    assert again.details == {"written": False} and again.reason is None
    unflag = one(sink, delta("update", {"remove_tags": ["sync-error"]}, target_key="long"))
    assert unflag.status == "applied" and unflag.reason is None
    assert (account.record("long") or {})["ds"] == flagged.removesuffix(" #sync-error")


def test_updating_a_missing_or_hidden_record_is_rejected(account: Account) -> None:
    account.put("gone", t1=T0, t2=T0 + 60, ds="HIDDEN old")
    outcomes = sink_of(account).apply(
        [
            delta("update", {"ds": "x"}, target_key="nope", key="a"),
            delta("update", {"ds": "x"}, target_key="gone", key="b"),
        ]
    )
    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    assert "'nope' does not exist in TimeTagger" in (outcomes[0].reason or "")
    assert "'gone' is deleted (hidden)" in (outcomes[1].reason or "")


def test_several_deltas_for_one_record_in_one_call_are_one_write(account: Account) -> None:
    sink = sink_of(account)
    create = delta("create", ENTRY, key="c")
    key = create_key_for(create)
    outcomes = sink.apply(
        [
            create,
            delta("update", {"add_tags": ["approved"]}, target_key=key, key="u1"),
            delta("update", {"t2": T0 + 7200}, target_key=key, key="u2"),
        ]
    )
    assert [(o.status, o.target_key) for o in outcomes] == [("applied", key)] * 3
    assert sink.writes == 1
    record = account.record(key)
    assert record is not None
    assert (record["t2"], record["ds"]) == (T0 + 7200, ENTRY["ds"] + " #approved")


# -- stale writes ------------------------------------------------------------------------------


def test_timetagger_accepts_but_ignores_a_write_with_an_older_mt(account: Account) -> None:
    """The trap the sink verifies against, shown on the server itself."""
    account.put("k", t1=T0, t2=T0 + 60, ds="newer", mt=T0 + 100)
    result = account.api().put_records(
        [{"key": "k", "t1": T0, "t2": T0 + 60, "ds": "older", "mt": T0 + 50}]
    )
    assert result.accepted == ["k"] and result.failed == {}
    assert (account.record("k") or {})["ds"] == "newer"


class _PersonWritesFirst(httpx.BaseTransport):
    """Talks to the real server; just before the sink's first PUT, a person's app writes the
    same record with a later mt (as a clock ahead of ours or an edit in the same instant)."""

    def __init__(self, before_put: Callable[[], None]) -> None:
        self.inner = httpx.HTTPTransport()
        self.before_put: Callable[[], None] | None = before_put

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and self.before_put is not None:
            run, self.before_put = self.before_put, None
            run()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_stale_write_is_detected_and_retryable_then_applies(account: Account) -> None:
    account.put("entry1", t1=T0, t2=T0 + 600, ds="Design review #acme/web")
    person_mt = int(time.time()) + 600

    def person_edits() -> None:
        account.put(
            "entry1", t1=T0, t2=T0 + 600, ds="Design review, 2nd part #acme/web", mt=person_mt
        )

    client = TimeTaggerClient(
        account.url, account.token, transport=_PersonWritesFirst(person_edits)
    )
    sink = TimeTaggerSink("tracker", client)
    mark = delta("update", {"add_tags": ["sync-error"]}, target_key="entry1")
    outcome = one(sink, mark)
    assert (outcome.status, outcome.reason) == ("retryable", STALE)
    assert outcome.details["kept_mt"] == person_mt and outcome.details["our_mt"] < person_mt
    assert sink.writes == 0
    assert (account.record("entry1") or {})["ds"] == "Design review, 2nd part #acme/web"

    retried = one(sink, mark)  # the retry merges into the person's version
    assert retried.status == "applied"
    record = account.record("entry1")
    assert record is not None
    assert (record["ds"], record["mt"]) == (
        "Design review, 2nd part #acme/web #sync-error",
        person_mt + 1,
    )


def test_a_persons_edit_between_read_and_write_is_not_overwritten(account: Account) -> None:
    """TimeTagger has no conditional write: the sink stamps mt = the version it read + 1, so an
    edit made after its read (stamped with the person's clock, here the same second as the
    sink's) wins, and the read-back answers retryable instead of `applied` over a lost edit."""
    account.put("entry1", t1=T0, t2=T0 + 600, ds="Design review #acme/web", mt=T0 + 100)
    now = math.ceil(time.time())

    def person_edits() -> None:
        account.put("entry1", t1=T0, t2=T0 + 900, ds="Design review, longer #acme/web", mt=now)

    client = TimeTaggerClient(
        account.url, account.token, transport=_PersonWritesFirst(person_edits)
    )
    sink = TimeTaggerSink("tracker", client, clock=lambda: float(now))
    mark = delta("update", {"add_tags": ["approved"]}, target_key="entry1")
    outcome = one(sink, mark)
    assert (outcome.status, outcome.reason) == ("retryable", STALE)
    assert outcome.details == {"our_mt": T0 + 101, "kept_mt": now}
    record = account.record("entry1")
    assert record is not None and (record["t2"], record["ds"]) == (
        T0 + 900,
        "Design review, longer #acme/web",
    )
    assert one(sink, mark).status == "applied"  # the retry merges into the person's edit
    record = account.record("entry1")
    assert record is not None and (record["t2"], record["ds"], record["mt"]) == (
        T0 + 900,
        "Design review, longer #acme/web #approved",
        now + 1,
    )


def test_a_record_older_than_an_account_reset_is_still_updated(account: Account) -> None:
    """TimeTagger refuses an mt older than the account's last reset ("Item was modified after a
    reset"); the sink then writes it again stamped now."""
    account.put("old", t1=T0, t2=T0 + 60, ds="before the reset", mt=T0 + 5)
    answer = httpx.put(account.url + "/api/v2/forcereset", headers={"authtoken": account.token})
    assert answer.status_code == 200
    time.sleep(1.1)  # TimeTagger compares mt (whole seconds) with the reset time
    outcome = one(sink_of(account), delta("update", {"ds": "after"}, target_key="old"))
    assert outcome.status == "applied", outcome.reason
    assert (account.record("old") or {})["ds"] == "after"


# -- deletes -----------------------------------------------------------------------------------


def test_a_delete_hides_the_record_and_the_source_reads_a_delete(account: Account) -> None:
    account.put("entry1", t1=T0, t2=T0 + 600, ds="Design review #acme/web")
    source = account.connector().source()
    checkpoint = [b.checkpoint for b in source.read(None, 10)][-1]
    sink = sink_of(account)
    remove = delta("delete", {}, target_key="entry1")
    assert one(sink, remove).status == "applied"
    assert (account.record("entry1") or {})["ds"] == "HIDDEN Design review #acme/web"
    assert one(sink, delta("delete", {}, target_key="entry1", key="x")).details == {
        "written": False
    }
    assert one(sink, delta("delete", {}, target_key="never-existed")).status == "applied"
    changes = [c for b in source.read(checkpoint, 10) for c in b.changes]
    assert [(c.key, c.op) for c in changes] == [("entry1", "delete")]
    assert source.current_keys("records") == set()


def test_a_delete_of_a_long_description_still_fits(account: Account) -> None:
    account.put("long", t1=T0, t2=T0 + 60, ds="z" * 255)
    assert one(sink_of(account), delta("delete", {}, target_key="long")).status == "applied"
    ds = (account.record("long") or {})["ds"]
    assert ds.startswith("HIDDEN ") and len(ds) == 255


# -- tag metadata ------------------------------------------------------------------------------


def test_tag_metadata_round_trip(account: Account) -> None:
    """Sink writes → TimeTagger settings → source reads; the app's own keys are kept."""
    account.put_setting("taginfo #acme/web", {"color": "#ff0000", "priority": 1})
    source = account.connector().source()
    sink = sink_of(account)
    create = delta(
        "create",
        {"name": "Acme website", "status": "open"},
        obj="taginfo",
        canonical_id="Project/acme/web",
        key="p1",
    )
    outcome = one(sink, create)
    assert (outcome.status, outcome.target_key) == ("applied", "acme/web")
    setting = account.setting("taginfo #acme/web")
    assert setting is not None
    assert setting["value"] == {
        "color": "#ff0000",
        "priority": 1,
        "name": "Acme website",
        "status": "open",
        "synchub_key": "p1",
    }
    changes, checkpoint = _read_all(source, None)
    (tag,) = [c for c in changes if c.object == "tags"]
    assert tag.key == "acme/web" and tag.record is not None
    assert (tag.record["name"], tag.record["status"]) == ("Acme website", "open")
    assert json.loads(tag.record["info"])["color"] == "#ff0000"

    assert one(sink, create).details == {"written": False}  # its synchub_key is there
    close = delta("update", {"status": "closed"}, obj="tags", target_key="acme/web", key="p2")
    assert one(sink, close).status == "applied"
    remove = delta("delete", {}, obj="taginfo", target_key="acme/web", key="p3")
    assert one(sink, remove).status == "applied"
    assert (account.setting("taginfo #acme/web") or {})["value"]["color"] == "#ff0000"
    changes, _ = _read_all(source, checkpoint)
    assert [(c.key, c.op) for c in changes] == [("acme/web", "delete")]
    assert source.current_keys("tags") == set()
    assert sink.writes == 3

    revive = delta("update", {"name": "Acme web"}, obj="taginfo", target_key="acme/web")
    assert one(sink, revive).status == "applied"
    assert source.current_keys("tags") == {"acme/web"}
    assert "status" not in (account.setting("taginfo #acme/web") or {})["value"]


def test_taginfo_refuses_bad_tags_and_values(account: Account) -> None:
    outcomes = sink_of(account).apply(
        [
            delta("create", {"name": "x"}, obj="taginfo", canonical_id="Project/Bad Tag!"),
            delta("create", {"name": b"bytes"}, obj="taginfo", canonical_id="Project/p1"),
            delta("create", {"synchub_key": "x"}, obj="taginfo", canonical_id="Project/p2"),
            delta("create", {"name": "x"}, obj="timesheets"),
        ]
    )
    assert [o.status for o in outcomes] == ["rejected"] * 4
    assert "is not a TimeTagger tag" in (outcomes[0].reason or "")
    assert "cannot be stored in TimeTagger's JSON" in (outcomes[1].reason or "")
    assert "synchub's own" in (outcomes[2].reason or "")
    assert "no object 'timesheets'" in (outcomes[3].reason or "")


def _read_all(source: Any, checkpoint: Any) -> tuple[list[Any], Any]:
    changes = []
    for batch in source.read(checkpoint, 50):
        changes.extend(batch.changes)
        checkpoint = batch.checkpoint
    return changes, checkpoint


# -- faults (httpx.MockTransport) ----------------------------------------------------------------


def _mock_sink(handler: Callable[[httpx.Request], httpx.Response]) -> TimeTaggerSink:
    client = TimeTaggerClient(
        "http://tt.test/timetagger", "token", transport=httpx.MockTransport(handler), backoff=0.0
    )
    return TimeTaggerSink("tracker", client)


def _empty_updates(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, json={"server_time": 1.0, "reset": False, "records": [], "settings": []}
    )


def test_429_with_retry_after_is_retryable_and_nothing_is_written() -> None:
    puts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return _empty_updates(request)
        puts.append(request)
        return httpx.Response(429, headers={"Retry-After": "7"}, text="slow down")

    sink = _mock_sink(handler)
    deltas = [delta("create", ENTRY, key="a"), delta("create", {**ENTRY, "ds": "b"}, key="b")]
    outcomes = sink.apply(deltas)
    assert [(o.status, o.retry_after) for o in outcomes] == [("retryable", 7.0)] * 2
    assert "429" in (outcomes[0].reason or "") and len(puts) == 1 and sink.writes == 0


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (503, {"Retry-After": "120"}, ("retryable", 120.0)),
        (502, {}, ("retryable", None)),
        (429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, ("retryable", 0.0)),
        (400, {}, ("rejected", None)),
        (401, {}, ("rejected", None)),
    ],
)
def test_http_errors_map_to_outcomes(
    status: int, headers: dict[str, str], expected: tuple[str, float | None]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, text=f"server says {status}")

    (outcome,) = _mock_sink(handler).apply([delta("create", ENTRY)])
    assert (outcome.status, outcome.retry_after) == expected
    if outcome.status == "rejected":
        assert outcome.reason == f"TimeTagger refused: {status} server says {status}"


def test_connection_errors_are_retried_then_retryable() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise httpx.ConnectError("connection refused", request=request)
        return _empty_updates(request)

    sink = _mock_sink(handler)
    assert sink.apply([delta("delete", {}, target_key="nope")])[0].status == "applied"
    assert calls == 3  # two failures retried, then the read; nothing to write

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    (outcome,) = _mock_sink(down).apply([delta("create", ENTRY)])
    assert outcome.status == "retryable" and "cannot reach TimeTagger" in (outcome.reason or "")


def test_a_failed_read_back_after_the_write_is_retryable() -> None:
    gets = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal gets
        if request.method == "PUT":
            return httpx.Response(200, json={"accepted": ["x"], "failed": [], "errors": []})
        gets += 1
        return _empty_updates(request) if gets == 1 else httpx.Response(503)

    (outcome,) = _mock_sink(handler).apply([delta("create", ENTRY)])
    assert outcome.status == "retryable"
    assert "could not read it back" in (outcome.reason or "")


def test_retry_after_parsing() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
