"""Outbound and exception lifecycles across passes: writes in flight when the canonical state
moves on, re-approval after a compensating delete, re-mapping under a new natural id, plan
exceptions whose cause lies in another entity, and ownership of deletes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub.testing import MemorySink
from hub.types import Delta, Outcome
from tests.unit.test_flow import MAPPING, World, _backend, erp_sets_the_project, same_after_rebuild  # noqa: F401

BOTH_BACKENDS = True


def _lines(w: World) -> list[dict[str, Any]]:
    return sorted(w.erp.records.values(), key=lambda r: sorted(r.items()))


def test_an_update_in_flight_is_superseded_when_the_value_returns(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        w.erp.fail_next(1, reason="503 Service Unavailable")
        w.entry("t1", "x #acme/web/design #approved", 120)
        w.hub.sync_once(wait=False)  # the update to 2 h is in flight (retrying)
        w.entry("t1", "x #acme/web/design #approved", 60)  # back to 1 h before it is retried
        w.hub.sync_once()
        w.hub.sync_once()
        assert [r["hours"] for r in _lines(w)] == [1.0]
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_a_create_in_flight_is_not_posted_once_the_entry_is_unapproved(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")
        w.erp.fail_next(1, reason="503 Service Unavailable")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once(wait=False)  # the create is in flight (retrying)
        w.entry("t1", "x #acme/web/design", 60)  # un-approved before it is retried
        w.hub.sync_once()
        w.hub.sync_once()
        assert w.erp.records == {}
        same_after_rebuild(w)
    finally:
        w.hub.close()


class _LostAnswer(MemorySink):
    """Writes, then loses the answer (a timeout after the target committed) `n` times."""

    def __init__(self, system: str, n: int) -> None:
        super().__init__(system)
        self.lose = n

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        outcomes = super().apply(deltas)
        if self.lose > 0:
            self.lose -= 1
            raise TimeoutError("read timed out")
        return outcomes


def test_a_create_whose_answer_was_lost_is_not_created_twice_after_an_edit(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    sink = _LostAnswer("erp", 1)
    w.hub.sinks["erp"] = w.hub.executor.sinks["erp"] = sink
    w.erp = sink
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once(wait=False)  # written, but the hub only saw a timeout
        w.entry("t1", "x #acme/web/design #approved", 90)
        w.hub.sync_once()
        w.hub.sync_once()
        assert [r["hours"] for r in _lines(w)] == [1.5]
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_an_entry_approved_again_after_its_line_was_deleted_is_created_anew(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    w.erp.reject_when(
        lambda d: (
            f"line {d.target_key} does not exist"
            if d.op == "update" and d.target_key not in w.erp.records
            else None
        )
    )
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        w.entry("t1", "x #acme/web/design", 60)
        w.hub.sync_once()
        assert w.erp.records == {}
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        assert w.exceptions() == []
        assert [r["hours"] for r in _lines(w)] == [1.0]
        last = list(w.erp.applied.values())[-1][1]
        assert last.op == "create"
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_a_new_natural_id_moves_the_entity_instead_of_duplicating_it(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        v2 = json.loads(json.dumps(MAPPING))
        v2["sources"][0]["id"] = "te-{$key}"
        w.write_mapping(v2)
        w.hub.sync_once()
        assert not w.state("TimeEntry/t1")["exists"]
        assert w.state("TimeEntry/te-t1")["exists"]
        assert [r["hours"] for r in _lines(w)] == [1.0]  # one timesheet line, not two
        same_after_rebuild(w)
    finally:
        w.hub.close()


def _requiring_person() -> dict[str, Any]:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["sources"][0]["fields"]["person_id"] = "user | upper | canonical Person"
    mapping["targets"][0]["require"] = {"the person is an ERP employee": "person_id | exists"}
    mapping["targets"][0]["fields"]["employee"] = "person_id"
    mapping["targets"][0]["feedback"] = {
        "system": "tracker",
        "object": "entries",
        "tag": "sync-error",
    }
    return mapping


def test_a_refused_entry_is_written_once_the_entity_it_needs_appears(tmp_path: Path) -> None:
    w = World(tmp_path, _requiring_person())
    try:
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["kind"] == "plan"
        w.person("ANN", "Ann")  # the employee is created in the ERP
        w.hub.sync_once()
        assert [r["hours"] for r in _lines(w)] == [1.0]
        assert w.exceptions() == []
        assert dict(list(w.tracker_sink.applied.values())[-1][1].fields) == {
            "remove_tags": ["sync-error"]
        }
        again = w.hub.sync_once()
        assert again.planned.planned == 0 and again.planned.failed == 0
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_retrying_a_refused_entry_that_still_fails_leaves_it_open(tmp_path: Path) -> None:
    w = World(tmp_path, _requiring_person())
    try:
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        (x,) = w.exceptions()
        w.hub.sync_once()  # nothing changed: not counted again
        assert w.hub.exception(x["id"])["occurrences"] == 1
        after = w.hub.act_on_exception(x["id"], "retry")
        assert (after["status"], after["occurrences"]) == ("open", 2)
    finally:
        w.hub.close()


def test_a_refused_entry_that_is_unapproved_no_longer_has_an_open_exception(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, _requiring_person())
    try:
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["kind"] == "plan"
        w.entry("t1", "x #acme/web/design", 60)  # un-approved: nothing to post any more
        w.hub.sync_once()
        assert w.exceptions() == []
        assert dict(list(w.tracker_sink.applied.values())[-1][1].fields) == {
            "remove_tags": ["sync-error"]
        }
        same_after_rebuild(w)
    finally:
        w.hub.close()


def test_a_rejected_write_of_an_entry_then_unapproved_is_resolved(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")
        w.erp.reject_when(lambda d: "work 'web' is closed")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.hub.sync_once()
        (x,) = w.exceptions()
        assert x["kind"] == "write"
        w.entry("t1", "x #acme/web/design", 60)
        w.hub.sync_once()
        assert w.exceptions() == []
        assert w.erp.records == {}
    finally:
        w.hub.close()


def test_a_system_that_does_not_own_an_entity_cannot_bring_it_back_after_its_delete(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, erp_sets_the_project())
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.erp_src.put("lines", "t1", {"id": "t1", "work": "acme"})
        w.hub.sync_once()
        assert w.state("TimeEntry/t1")["fields"]["project_id"] == "acme"
        w.tracker.delete("entries", "t1")  # deleted by its system of record
        w.hub.sync_once()
        assert not w.state("TimeEntry/t1")["exists"]
        w.erp_src.put("lines", "t1", {"id": "t1", "work": "globex"})  # the ERP still has a line
        w.hub.sync_once()
        assert not w.state("TimeEntry/t1")["exists"]
        same_after_rebuild(w)
    finally:
        w.hub.close()


def _canonical(w: World) -> dict[str, Any]:
    with w.hub.store.db.transaction(commit=False) as c:
        c.execute("SELECT canonical_id, fields, deleted FROM p_canonical")
        return {cid: None if deleted else json.loads(f) for cid, f, deleted in c.fetchall()}


def test_preview_of_a_new_natural_id_equals_what_deploying_it_does(tmp_path: Path) -> None:
    from hub.mapping import Mapping

    w = World(tmp_path)
    try:
        w.person("ANN", "Ann")
        w.entry("t1", "x #acme/web/design #approved", 60)
        w.entry("t2", "y #acme/web/dev", 30, user="zed")  # waits for its person
        w.hub.sync_once()
        v2 = json.loads(json.dumps(MAPPING))
        v2["sources"][0]["id"] = "te-{$key}"
        preview = w.hub.projector.preview(Mapping.from_dict(v2, version=2))
        before = _canonical(w)
        w.write_mapping(v2)
        w.hub.sync_once()
        after = _canonical(w)
        changed = {cid for cid in before.keys() | after.keys() if before.get(cid) != after.get(cid)}
        assert (
            {d["canonical_id"] for d in preview} == changed == {"TimeEntry/t1", "TimeEntry/te-t1"}
        )
        assert all(d["change"] == "removed" for d in preview if d["canonical_id"] == "TimeEntry/t1")
    finally:
        w.hub.close()
