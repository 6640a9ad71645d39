"""Projection lifecycles: links to the wrong entity, settled write failures, restores by the
system of record, and mapping versions that drop a rule. Every test that changes state checks
that a rebuild gives the same checksums."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hub import queries
from tests.unit.test_flow import MAPPING, World, _backend, erp_sets_the_project, same_after_rebuild  # noqa: F401

BOTH_BACKENDS = True


def _rows(w: World, sql: str) -> list[tuple[Any, ...]]:
    with w.hub.store.db.transaction(commit=False) as c:
        c.execute(sql)
        return [tuple(r) for r in c.fetchall()]


def _copy(mapping: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(mapping)))


# -- 1. a link to another entity is a mapping error, not a missing link --------------------------


def _logins_are_accounts() -> dict[str, Any]:
    """erp/logins records map to Account (a mistake): a `link Person erp logins` finds an
    Account there."""
    mapping = _copy(MAPPING)
    mapping["sources"][2] = {
        "system": "erp",
        "object": "logins",
        "entity": "Account",
        "id": "login",
        "fields": {"name": "name"},
    }
    return mapping


def test_a_link_to_another_entity_is_a_plain_mapping_error_and_does_not_wait(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, _logins_are_accounts())
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["kind"] == "mapping" and x["field"] == "person_id"
        assert "erp/logins/ann is linked to Account/ann, not to a Person" in x["message"]
        assert "capture it first" not in x["message"]
        assert "re-mapped by itself" not in x["fix"]
        assert _rows(w, "SELECT * FROM p_waiting") == []
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_a_link_to_another_entity_in_a_target_rule_is_a_plan_error_saying_so(
    tmp_path: Path,
) -> None:
    mapping = _logins_are_accounts()
    mapping["sources"][0]["fields"]["person_id"] = "user | canonical Person"
    mapping["targets"][0]["fields"]["employee"] = "description | link Person erp logins"
    w = World(tmp_path, mapping)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "ann #acme/web/design #approved", 60)
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["kind"] == "plan"
        assert "erp/logins/ann is linked to Account/ann, not to a Person" in x["message"]
        assert "capture it first" not in x["message"]
        same_after_rebuild(w)
    finally:
        w.hub.close()


# -- 2. a settled write failure is not counted as failed -----------------------------------------


def _outbound_counts(w: World) -> dict[str, int]:
    status = queries.status(w.hub.store, w.hub.projector, [])
    return dict(status["outbound"].get("erp", {}))


def test_a_write_failure_resolved_by_an_operator_no_longer_counts_as_failed(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved")
        w.erp.reject_when(lambda d: "timesheet line refused: work 'web' is closed")
        w.hub.sync_once()
        assert _outbound_counts(w)["failed"] == 1
        (x,) = w.exceptions()
        w.hub.act_on_exception(x["id"], "resolve", note="entered by hand")
        assert w.exceptions() == []
        counts = _outbound_counts(w)
        assert counts["failed"] == 0 and counts["resolved"] == 1
        status = queries.status(w.hub.store, w.hub.projector, [])["outbound"]["erp"]
        assert status == {**dict.fromkeys(queries.OUTBOUND_STATUSES, 0), "resolved": 1}
        same_after_rebuild(w)
        assert _outbound_counts(w) == counts
        # settled, not forgotten: the next change is planned and written as usual
        w.erp.reject_when(None)
        w.entry("t1", "x #acme/web/design #approved", 90)
        w.hub.sync_once()
        assert [r["hours"] for r in w.erp.records.values()] == [1.5]
        assert _outbound_counts(w)["applied"] == 1
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_a_write_failure_ignored_by_an_operator_is_not_sent_again(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved")
        w.erp.reject_when(lambda d: "timesheet line refused")
        w.hub.sync_once()
        (x,) = w.exceptions()
        w.hub.act_on_exception(x["id"], "ignore")
        w.erp.reject_when(None)
        w.hub.sync_once()
        counts = _outbound_counts(w)
        assert counts["failed"] == 0 and counts["ignored"] == 1
        assert w.erp.records == {}
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_a_write_failure_the_planner_resolves_no_longer_counts_as_failed(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved")
        w.erp.reject_when(lambda d: "timesheet line refused")
        w.hub.sync_once()
        w.entry("t1", "x #acme/web/design")  # un-approved: nothing to write any more
        w.hub.sync_once()
        assert w.exceptions() == []
        counts = _outbound_counts(w)
        assert counts["failed"] == 0 and counts["resolved"] == 1
        status = queries.status(w.hub.store, w.hub.projector, [])["outbound"]["erp"]
        assert status == {**dict.fromkeys(queries.OUTBOUND_STATUSES, 0), "resolved": 1}
        same_after_rebuild(w)
    finally:
        w.hub.close()


# -- 3. a restore by the system of record brings back the fields other systems own --------------


def test_a_restored_entity_keeps_the_fields_other_systems_own(tmp_path: Path) -> None:
    w = World(tmp_path, erp_sets_the_project())
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.erp_src.put("lines", "t1", {"id": "t1", "work": "acme"})
        w.hub.sync_once()
        w.tracker.delete("entries", "t1")
        w.hub.sync_once()
        assert not w.state("TimeEntry/t1")["exists"]
        w.entry("t1", "x #acme/web/design #approved", 90)  # restored by its system of record
        w.hub.sync_once()
        fields = w.state("TimeEntry/t1")["fields"]
        assert fields["minutes"] == 90 and fields["project_id"] == "acme"
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_a_change_by_another_owner_while_deleted_is_kept_for_the_restore(tmp_path: Path) -> None:
    w = World(tmp_path, erp_sets_the_project())
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.erp_src.put("lines", "t1", {"id": "t1", "work": "acme"})
        w.hub.sync_once()
        w.tracker.delete("entries", "t1")
        w.hub.sync_once()
        w.erp_src.put("lines", "t1", {"id": "t1", "work": "globex"})  # while it is deleted
        w.hub.sync_once()
        assert not w.state("TimeEntry/t1")["exists"]
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        assert w.state("TimeEntry/t1")["fields"]["project_id"] == "globex"
        audit = [(h["op"], h["system"]) for h in queries.history(w.hub.store, "TimeEntry/t1")]
        assert audit[-2:] == [("restore", "tracker"), ("update", "erp")]
        same_after_rebuild(w)
    finally:
        w.hub.close()


# -- 4. a version that drops a rule resolves that rule's exceptions, and keeps its entities ------


def test_a_version_without_the_rule_resolves_its_exceptions_and_keeps_its_entities(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.entry("t2", "y #acme/web/dev", 30, user="zed")  # no such person: waits, exception
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["subject"] == "source/tracker/entries/t2"
        v2 = _copy(MAPPING)
        v2["sources"] = [s for s in v2["sources"] if s["object"] != "entries"]
        w.write_mapping(v2)
        w.hub.sync_once()
        assert w.exceptions() == []
        assert "no rule maps tracker/entries" in str(w.hub.exception(x["id"])["resolution"])
        assert _rows(w, "SELECT * FROM p_waiting") == []
        # not deleted: a mapping change is not a delete by the system of record
        assert w.state("TimeEntry/t1")["exists"]
        assert len(w.erp.records) == 1
        same_after_rebuild(w)
        # the person captured later re-maps nothing and opens nothing
        w.person("ZED", "Zed")
        w.hub.sync_once()
        assert w.exceptions() == [] and not w.state("TimeEntry/t2")["exists"]
        # the rule back: every record is mapped again, t2 included
        w.write_mapping(_copy(MAPPING))
        w.hub.sync_once()
        assert w.state("TimeEntry/t2")["fields"]["person_id"] == "Person/ZED"
        same_after_rebuild(w)
    finally:
        w.hub.close()


# -- an entity two records of its system of record map to lives while one of them does ---------


def test_an_entity_lives_while_another_record_of_its_system_of_record_maps_to_it(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")  # erp/employees/ANN and erp/logins/ann: both Person/ANN
        w.hub.sync_once()
        w.erp_src.delete("logins", "ann")
        w.hub.sync_once()
        assert w.state("Person/ANN")["exists"]
        same_after_rebuild(w)
        w.erp_src.delete("employees", "ANN")
        w.hub.sync_once()
        assert not w.state("Person/ANN")["exists"]
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_an_entity_whose_records_are_all_deleted_by_their_rule_is_deleted(
    tmp_path: Path,
) -> None:
    mapping = _copy(MAPPING)
    for rule in mapping["sources"][1:]:
        rule["delete"] = "name | equals gone"
    w = World(tmp_path, mapping)
    try:
        w.person("ANN", "Ann")
        w.hub.sync_once()
        w.erp_src.put("employees", "ANN", {"code": "ANN", "name": "gone", "login": "ann"})
        w.hub.sync_once()
        assert w.state("Person/ANN")["exists"]  # its login still maps to it
        w.erp_src.put("logins", "ann", {"code": "ANN", "name": "gone", "login": "ann"})
        w.hub.sync_once()
        assert not w.state("Person/ANN")["exists"]
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_a_delete_pipeline_sees_the_record_key(tmp_path: Path) -> None:
    mapping = _copy(MAPPING)
    mapping["sources"][0]["delete"] = "$key | equals t2"
    w = World(tmp_path, mapping)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design", 60)
        w.entry("t2", "y #acme/web/design", 60)
        w.hub.sync_once()
        assert w.state("TimeEntry/t1")["exists"] and not w.state("TimeEntry/t2")["exists"]
        same_after_rebuild(w)
    finally:
        w.hub.close()


# -- a rebuild folds other pages than catch-up: lookups must not depend on them -----------------


def test_target_key_in_an_inbound_rule_gives_the_same_key_in_a_rebuild(tmp_path: Path) -> None:
    mapping = _copy(MAPPING)
    mapping["sources"][0]["fields"]["description"] = (
        "user | link Person erp logins | target_key erp"
    )
    mapping["targets"] = []
    w = World(tmp_path, mapping)
    try:
        w.erp_src.put("logins", "ann", {"code": "ANN", "name": "Ann", "login": "ann"})
        w.hub.sync_once()
        w.erp_src.put("employees", "ANN", {"code": "ANN", "name": "Ann", "login": "ann"})
        w.hub.sync_once()  # Person/ANN has two erp keys: employees/ANN comes first
        w.entry("t1", "x #acme/web/design", 60)
        w.hub.sync_once()
        assert w.state("TimeEntry/t1")["fields"]["description"] == "ANN"
        same_after_rebuild(w)  # one page: logins/ann was linked first
    finally:
        w.hub.close()
