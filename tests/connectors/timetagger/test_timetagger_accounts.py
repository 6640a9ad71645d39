"""One connector over several people's TimeTagger accounts (`accounts: {person: token}`), against
two real accounts: keys `<person>/<record key>`, the `person` field, a cursor per account,
routing of record deltas, taginfo written to every account, and the options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest
from fastavro.validation import validate

from connectors.timetagger import TimeTaggerConnector, TimeTaggerSink, TimeTaggerSource
from connectors.timetagger.client import TimeTaggerClient
from connectors.timetagger.localserver import TimeTaggerServer
from connectors.timetagger.sink import create_key_for
from connectors.timetagger.source import RECORDS_SCHEMA
from connectors.timetagger.tags import hide
from hub.spi import JSON, Change, ConnectorError, Delta, Outcome
from tests.connectors.timetagger.conftest import T0, Account, Team, delta, new_account


def read(
    source: TimeTaggerSource, checkpoint: JSON | None = None, batch_size: int = 100
) -> tuple[list[Change], JSON, list[JSON]]:
    """Every change after `checkpoint`, the final checkpoint and every batch's checkpoint
    (JSON round-tripped, as ingest stores them)."""
    changes: list[Change] = []
    checkpoints: list[JSON] = []
    for batch in source.read(checkpoint, batch_size):
        changes.extend(batch.changes)
        checkpoint = json.loads(json.dumps(batch.checkpoint))
        checkpoints.append(checkpoint)
    return changes, checkpoint, checkpoints


def one(sink: TimeTaggerSink, d: Delta) -> Outcome:
    (outcome,) = sink.apply([d])
    return outcome


ENTRY: dict[str, Any] = {"t1": T0, "t2": T0 + 3600, "ds": "Workshop #acme/web"}


# -- source ------------------------------------------------------------------------------------


def test_records_of_every_account_carry_the_person_and_a_prefixed_key(team: Team) -> None:
    team["alice"].put("a1", t1=T0, t2=T0 + 600, ds="Design #acme/web")
    team["bob"].put("b1", t1=T0, t2=T0 + 900, ds="Review #acme/web")
    for person in ("alice", "bob"):  # the same record key in both accounts: two records
        team[person].put("same", t1=T0, t2=T0 + 60, ds=f"{person}'s")
    source = team.connector().source()
    changes, _, _ = read(source)
    parsed = fastavro.parse_schema(RECORDS_SCHEMA)
    records = {c.key: c.record for c in changes}
    assert set(records) == {"alice/a1", "alice/same", "bob/b1", "bob/same"}
    for key, record in records.items():
        assert record is not None and validate(dict(record), parsed, raise_errors=True)
        assert record["key"] == key and record["person"] == key.split("/")[0]
    assert records["bob/same"] is not None and records["bob/same"]["ds"] == "bob's"
    assert source.current_keys("records") == set(records)

    team["bob"].put("same", t1=T0, t2=T0 + 60, ds=hide("bob's"))
    assert source.current_keys("records") == {"alice/a1", "alice/same", "bob/b1"}


def test_person_names_the_token_account_and_keys_stay_unprefixed(account: Account) -> None:
    account.put("a1", t1=T0, t2=T0 + 600, ds="Design")
    (named,) = read(account.connector(person="alice").source())[0]
    (unnamed,) = read(account.connector().source())[0]
    assert (named.key, named.record and named.record["person"]) == ("a1", "alice")
    assert (unnamed.key, unnamed.record and unnamed.record["person"]) == ("a1", None)


def test_tag_metadata_is_read_from_the_first_account(team: Team) -> None:
    team["alice"].put_setting("taginfo #acme/web", {"name": "Acme website"})
    team["bob"].put_setting("taginfo #bobs-own", {"name": "Bob's tag"})
    source = team.connector().source()
    tags = [c.key for c in read(source)[0] if c.object == "tags"]
    assert tags == ["acme/web"]
    assert source.current_keys("tags") == {"acme/web"}


def test_the_tag_account_stays_when_people_are_added_ahead_or_reordered(
    team: Team, timetagger_server: TimeTaggerServer
) -> None:
    """Tag metadata is read from the account the checkpoint read it from, not from whichever
    is listed first now: a new person listed first (or a reordering) neither makes every tag
    look deleted to reconciliation nor reads tags again or loses alice's later changes."""
    team["alice"].put_setting("taginfo #acme/web", {"name": "Acme website"})
    team["bob"].put_setting("taginfo #bobs-own", {"name": "Bob's tag"})
    changes, checkpoint, _ = read(team.connector().source())
    assert [c.key for c in changes if c.object == "tags"] == ["acme/web"]

    aaron = new_account(timetagger_server)
    try:
        aaron.put_setting("taginfo #aarons", {"name": "Aaron's tag"})
        base = team.options()
        orders = {
            "aaron first": {"aaron": aaron.token, **base["accounts"]},
            "reordered": dict(reversed(base["accounts"].items())),
        }
        for order, accounts in orders.items():
            options = {**base, "accounts": accounts}
            source = TimeTaggerConnector("tracker", options, Path(".")).source()
            changes, later, _ = read(source, checkpoint)
            assert [c.key for c in changes if c.object == "tags"] == [], order
            assert source.current_keys("tags") == {"acme/web"}, order
            assert later["tags"]["from"] == "alice", order
            team["alice"].put_setting("taginfo #acme/web", {"name": f"Acme ({order})"})
            changes, checkpoint, _ = read(source, later)
            renamed = [c.record for c in changes if c.object == "tags"]
            assert [r and r["name"] for r in renamed] == [f"Acme ({order})"], order

        # `tags_from` picks another account: its tag metadata is read from the start.
        options = {**base, "accounts": orders["aaron first"], "tags_from": "bob"}
        source = TimeTaggerConnector("tracker", options, Path(".")).source()
        changes, later, _ = read(source, checkpoint)
        assert [c.key for c in changes if c.object == "tags"] == ["bobs-own"]
        assert source.current_keys("tags") == {"bobs-own"} and later["tags"]["from"] == "bob"
    finally:
        aaron.close()


def test_a_checkpoint_from_before_the_tag_cursor_continues_from_the_first_account(
    team: Team,
) -> None:
    team["alice"].put_setting("taginfo #acme/web", {"name": "Acme website"})
    source = team.connector().source()
    _, checkpoint, _ = read(source)
    # As written before: no "tags", and the first account's cursor held its tags too.
    old = {"version": 1, "accounts": checkpoint["accounts"]}
    old["accounts"]["alice"] = {k: v for k, v in checkpoint["tags"].items() if k != "from"}
    assert read(source, old)[0] == []  # nothing read twice
    team["alice"].put_setting("taginfo #acme/web", {"name": "Acme"})
    changes, resumed, _ = read(source, old)
    assert [c.key for c in changes] == ["acme/web"] and resumed["tags"]["from"] == "alice"


def test_each_account_has_its_own_cursor_in_the_checkpoint(
    team: Team, timetagger_server: TimeTaggerServer
) -> None:
    for i in range(3):
        team["alice"].put(f"a{i}", t1=T0 + i, t2=T0 + 60, ds="alice")
        team["bob"].put(f"b{i}", t1=T0 + i, t2=T0 + 60, ds="bob")
    source = team.connector(lag=2).source()
    changes, final, checkpoints = read(source, batch_size=2)
    everything = {c.key for c in changes}
    assert len(everything) == 6 and len(checkpoints) == 3
    assert set(final["accounts"]) == {"alice", "bob"}
    assert set(final["accounts"]["bob"]) == {"cursor", "reset_floor"}
    for k, checkpoint in enumerate(checkpoints):  # resuming anywhere loses nothing
        before = {c.key for c in changes[: 2 * (k + 1)]}
        assert before | {c.key for c in read(source, checkpoint)[0]} == everything

    team["bob"].put("b9", t1=T0, t2=T0 + 60, ds="later")
    changes, final, _ = read(source, final)
    assert [c.key for c in changes] == ["bob/b9"]

    # A reset of bob's account starts bob over, not alice.
    answer = httpx.put(
        team["bob"].url + "/api/v2/forcereset", headers={"authtoken": team["bob"].token}
    )
    assert answer.status_code == 200
    changes, final, _ = read(source, final)
    assert sorted(c.key for c in changes) == ["bob/b0", "bob/b1", "bob/b2", "bob/b9"]
    assert read(source, final)[0] == []

    # An account added to the configuration is read from the start; the others resume.
    carol = new_account(timetagger_server)
    try:
        carol.put("c1", t1=T0, t2=T0 + 60, ds="carol")
        options = team.options(lag=2)
        options["accounts"]["carol"] = carol.token
        wider = TimeTaggerConnector("tracker", options, Path(".")).source()
        changes, final, _ = read(wider, final)
        assert [c.key for c in changes] == ["carol/c1"]
        assert set(final["accounts"]) == {"alice", "bob", "carol"}
    finally:
        carol.close()


def test_a_checkpoint_of_the_other_shape_is_a_clear_error(team: Team) -> None:
    """Switching between `token` and `accounts` needs a checkpoint reset (keys change too)."""
    team["alice"].put("a1", t1=T0, t2=T0 + 60, ds="x")
    single = team["alice"].connector().source()
    several = team.connector().source()
    (_, single_checkpoint, _), (_, several_checkpoint, _) = read(single), read(several)
    with pytest.raises(ConnectorError, match=r"for several accounts .*reset this connector's"):
        list(several.read(single_checkpoint, 10))
    with pytest.raises(ConnectorError, match=r"for one account \(`token`\)"):
        list(single.read(several_checkpoint, 10))


# -- sink: records -----------------------------------------------------------------------------


def test_record_deltas_are_routed_to_the_account_their_key_or_person_names(team: Team) -> None:
    alice, bob = team["alice"], team["bob"]
    for acc in (alice, bob):
        acc.put("rec1", t1=T0, t2=T0 + 600, ds="Call #acme")
    alice_before = alice.record("rec1")
    sink = team.connector().sink()

    updated = one(sink, delta("update", {"add_tags": ["approved"]}, target_key="bob/rec1"))
    assert (updated.status, updated.target_key) == ("applied", "bob/rec1")
    assert (bob.record("rec1") or {})["ds"] == "Call #acme #approved"
    assert alice.record("rec1") == alice_before  # untouched: same st

    create = delta("create", {**ENTRY, "person": "alice"}, key="c1")
    created = one(sink, create)
    local = create_key_for(create)
    assert (created.status, created.target_key) == ("applied", f"alice/{local}")
    record = alice.record(local)
    assert record is not None and "person" not in record and record["ds"] == ENTRY["ds"]
    assert bob.record(local) is None
    assert one(sink, create).details == {"written": False}  # a retry finds it

    # The hub's later writes name the record by the key the outcome (and the source) gave.
    edit = delta("update", {"t2": T0 + 7200, "person": "alice"}, target_key=created.target_key)
    assert one(sink, edit).status == "applied"
    assert one(sink, delta("delete", {}, target_key="bob/rec1")).status == "applied"
    assert (alice.record(local) or {})["t2"] == T0 + 7200
    assert (bob.record("rec1") or {})["ds"].startswith("HIDDEN")
    assert (alice.record("rec1") or {})["ds"] == "Call #acme"
    assert sink.writes == 4
    assert team.connector().source().current_keys("records") == {"alice/rec1", f"alice/{local}"}


def test_record_deltas_that_name_no_account_are_rejected(team: Team) -> None:
    team["alice"].put("rec1", t1=T0, t2=T0 + 600, ds="Call")
    sink = team.connector().sink()
    outcomes = sink.apply(
        [
            delta("create", ENTRY, key="1"),
            delta("create", {**ENTRY, "person": "carol"}, key="2"),
            delta("update", {"ds": "x"}, target_key="rec1", key="3"),
            delta("update", {"ds": "x"}, target_key="carol/rec1", key="4"),
            delta("update", {"ds": "x", "person": "bob"}, target_key="alice/rec1", key="5"),
            delta("update", {"ds": "x", "person": "alice"}, key="6"),
        ]
    )
    reasons = [o.reason or "" for o in outcomes]
    assert [o.status for o in outcomes] == ["rejected"] * 6
    assert "the delta names none: map a `person` field" in reasons[0]
    assert "for person 'carol', who has no TimeTagger account" in reasons[1]
    assert "'rec1' names no account" in reasons[2] and "['alice', 'bob']" in reasons[2]
    assert "'carol/rec1' names no account" in reasons[3]
    assert "cannot move between accounts" in reasons[4]
    assert "no target_key" in reasons[5]
    assert [r["ds"] for r in team["alice"].api().updates(0).records] == ["Call"]
    assert team["bob"].api().updates(0).records == []


def test_with_token_a_person_field_must_be_the_configured_person(account: Account) -> None:
    named = account.connector(person="alice").sink()
    create = delta("create", {**ENTRY, "person": "alice"}, key="a")
    ok = one(named, create)
    assert (ok.status, ok.target_key) == ("applied", create_key_for(create))
    other = one(named, delta("create", {**ENTRY, "person": "bob"}, key="b"))
    assert other.status == "rejected"
    assert "writes only the TimeTagger account of 'alice'" in (other.reason or "")
    unnamed = account.connector().sink()
    assert one(unnamed, delta("create", {**ENTRY, "person": None}, key="c")).status == "applied"
    refused = one(unnamed, delta("create", {**ENTRY, "person": "alice"}, key="d"))
    assert refused.status == "rejected" and "use `accounts`" in (refused.reason or "")


# -- sink: taginfo -----------------------------------------------------------------------------


def test_taginfo_is_written_to_every_account(team: Team) -> None:
    team["bob"].put_setting("taginfo #acme/web", {"color": "#ff0000"})  # bob's own colour
    sink = team.connector().sink()
    create = delta(
        "create",
        {"name": "Acme website", "status": "open"},
        obj="taginfo",
        key="p1",
        canonical_id="Project/acme/web",
    )
    outcome = one(sink, create)
    assert (outcome.status, outcome.target_key) == ("applied", "acme/web")
    assert {p: d["written"] for p, d in outcome.details["accounts"].items()} == {
        "alice": True,
        "bob": True,
    }
    expected = {"name": "Acme website", "status": "open", "synchub_key": "p1"}
    assert (team["alice"].setting("taginfo #acme/web") or {})["value"] == expected
    assert (team["bob"].setting("taginfo #acme/web") or {})["value"] == {
        "color": "#ff0000",
        **expected,
    }
    again = one(sink, create)
    assert again.status == "applied" and sink.writes == 2
    assert {d["written"] for d in again.details["accounts"].values()} == {False}


def test_a_taginfo_failure_in_one_account_names_it_and_a_retry_completes(team: Team) -> None:
    alice, bob = team["alice"], team["bob"]

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "30"}, text="maintenance")

    broken_bob = TimeTaggerClient(bob.url, bob.token, transport=httpx.MockTransport(down))
    create = delta("create", {"name": "Acme"}, obj="taginfo", key="p1", target_key="acme")
    outcome = one(TimeTaggerSink("tracker", {"alice": alice.client(), "bob": broken_bob}), create)
    assert (outcome.status, outcome.retry_after) == ("retryable", 30.0)
    assert (outcome.reason or "").startswith("account 'bob': TimeTagger at ")
    assert "(applied to ['alice']; a retry writes only where it is missing)" in (
        outcome.reason or ""
    )
    assert bob.setting("taginfo #acme") is None and alice.setting("taginfo #acme") is not None

    retried = one(team.connector().sink(), create)
    assert retried.status == "applied"
    assert {p: d["written"] for p, d in retried.details["accounts"].items()} == {
        "alice": False,
        "bob": True,
    }

    # A refused account (a revoked token: 401) is rejected, without showing the token.
    revoked = bob.token[:-6] + "AAAAAA"
    options = team.options()
    options["accounts"]["bob"] = revoked
    sink = TimeTaggerConnector("tracker", options, Path(".")).sink()
    refused = one(sink, delta("update", {"status": "closed"}, obj="taginfo", target_key="acme"))
    assert refused.status == "rejected"
    assert (refused.reason or "").startswith("account 'bob': TimeTagger refused: 401")
    assert revoked not in (refused.reason or "") and bob.token not in (refused.reason or "")


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"url": "http://h/t", "token": "x", "accounts": {"a": "y"}}, "token, accounts: give only"),
        ({"url": "http://h/t"}, "token: required option is missing (or, for several accounts"),
        ({"url": "http://h/t", "accounts": {}}, "accounts: is empty"),
        ({"url": "http://h/t", "accounts": {"a/b": "x"}}, "'a/b' is not a usable person name"),
        ({"url": "http://h/t", "accounts": {"alice": " "}}, "the token of 'alice' is empty"),
        ({"url": "http://h/t", "accounts": {"a": "x"}, "person": "a"}, "person: goes with `token`"),
        ({"url": "http://h/t", "token": "x", "person": "a b"}, "person: 'a b' is not a usable"),
        ({"url": "http://h/t", "accounts": {"a": "x"}, "tags_from": "b"}, "tags_from: 'b' is not"),
        ({"url": "http://h/t", "token": "x", "tags_from": "b"}, "tags_from: goes with `accounts`"),
    ],
)
def test_bad_account_options_say_what_to_fix(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConnectorError) as info:
        TimeTaggerConnector("tracker", options, Path("."))
    assert "'tracker' (timetagger)" in str(info.value) and expected in str(info.value)


def test_account_tokens_never_show_in_reprs_or_errors() -> None:
    secrets = {"alice": "s3cr3t-alice-token", "bob": "s3cr3t-bob-token"}
    connector = TimeTaggerConnector(
        "tracker", {"url": "http://h/t", "accounts": secrets}, Path(".")
    )
    shown = repr(connector.options) + repr(connector.accounts())
    with pytest.raises(ConnectorError) as unknown:
        connector.client("carol")
    bad = [
        {"url": "http://h/t", "accounts": {**secrets, "eve": 5}},
        {"url": "http://h/t", "accounts": {**secrets, "e/ve": "x"}},
        {"url": "http://h/t", "accounts": secrets, "token": secrets["alice"]},
    ]
    for options in bad:
        with pytest.raises(ConnectorError) as info:
            TimeTaggerConnector("tracker", options, Path("."))
        shown += str(info.value)
    shown += str(unknown.value)
    assert "no account 'carol'" in str(unknown.value)
    assert not [s for s in secrets.values() if s in shown]


def test_a_tag_with_people_is_published_to_them_only_and_taken_back_when_they_leave(
    team: Team,
) -> None:
    """`people` (the consultants assigned to a project) routes a taginfo: written to their
    accounts, deleted where someone no longer on it holds it, never written elsewhere."""
    sink = team.connector().sink()
    fields = {"name": "Acme website", "status": "open"}
    alice_only = delta(
        "create", {**fields, "people": ["alice"]}, obj="taginfo", key="p1", target_key="acme/web"
    )
    outcome = one(sink, alice_only)
    assert outcome.status == "applied", outcome.reason
    expected = {**fields, "synchub_key": "p1"}
    assert (team["alice"].setting("taginfo #acme/web") or {})["value"] == expected
    assert team["bob"].setting("taginfo #acme/web") is None  # not written where not assigned
    assert one(sink, alice_only).status == "applied" and sink.writes == 1  # idempotent

    bob_only = delta(
        "update", {**fields, "people": ["bob"]}, obj="taginfo", key="p2", target_key="acme/web"
    )
    assert one(sink, bob_only).status == "applied"
    assert (team["bob"].setting("taginfo #acme/web") or {})["value"] == {
        **fields,
        "synchub_key": "p2",
    }
    alice_now = (team["alice"].setting("taginfo #acme/web") or {})["value"]
    assert alice_now["status"] == "deleted"  # taken off the project: the tag is withdrawn

    stranger = delta(
        "update",
        {**fields, "people": ["bob", "zoe"]},
        obj="taginfo",
        key="p3",
        target_key="acme/web",
    )
    refused = one(sink, stranger)
    assert refused.status == "rejected"
    assert "no TimeTagger account for ['zoe']" in (refused.reason or "")
    bad = delta("update", {**fields, "people": "bob"}, obj="taginfo", key="p4", target_key="x")
    assert "`people` must be a list of account names" in (one(sink, bad).reason or "")
