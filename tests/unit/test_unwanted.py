"""`unwanted` on a target rule: what becomes of a record written before once its entity is not
wanted any more — deleted (the default), kept, or an exception for a person to decide (a
project provisioned for a deal that is lost afterwards)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.errors import MappingSpecError
from hub.exception_actions import record_exception_action
from hub.mapping import Mapping
from tests.unit.test_flow import MAPPING, World, _backend  # noqa: F401

BOTH_BACKENDS = True


def mapping(unwanted: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(MAPPING))
    if unwanted is not None:
        doc["targets"][0]["unwanted"] = unwanted
    return doc


def approved_then_unapproved(w: World) -> str:
    """An approved entry written to the ERP, then un-approved: the ERP line's key."""
    w.person("ANN", "Ann")
    w.entry("t1", "x #acme/web/design #approved", 60)
    w.hub.sync_once()
    (key,) = w.erp.records
    w.entry("t1", "x #acme/web/design", 60)  # not approved any more: not wanted
    return key


def idle(w: World, passes: int = 3) -> None:
    """Passes with nothing changed anywhere plan nothing, write nothing, append nothing."""
    for _ in range(passes):
        head = w.hub.store.head()
        report = w.hub.sync_once()
        assert report.planned.planned == 0 and report.executed.attempted == 0
        assert w.hub.store.head() == head


def test_keep_leaves_the_record_and_writes_it_again_once_wanted(tmp_path: Path) -> None:
    w = World(tmp_path, mapping("keep"))
    try:
        key = approved_then_unapproved(w)
        w.hub.sync_once()
        assert list(w.erp.records) == [key]  # kept as it was
        assert w.exceptions() == []
        idle(w)
        w.entry("t1", "x #acme/web/design #approved", 90)  # wanted again, changed
        w.hub.sync_once()
        last = list(w.erp.applied.values())[-1][1]
        assert (last.op, dict(last.fields), last.target_key) == ("update", {"hours": 1.5}, key)
    finally:
        w.hub.close()


def test_exception_opens_once_and_a_persons_decision_stands(tmp_path: Path) -> None:
    w = World(tmp_path, mapping("exception"))
    try:
        key = approved_then_unapproved(w)
        w.hub.sync_once()
        assert list(w.erp.records) == [key]  # nothing undone
        (x,) = w.exceptions()
        assert x["kind"] == "plan" and x["canonical_id"] == "TimeEntry/t1"
        assert f"erp record {key} was written for it" in x["message"]
        assert "its `when` is false now" in x["message"]
        idle(w)  # open already: not again
        record_exception_action(
            w.hub.store, w.hub.projector, x["id"], "resolve", "closed in the ERP by hand"
        )
        idle(w)  # a person decided: not opened again
        assert w.exceptions() == []
    finally:
        w.hub.close()


def test_delete_stays_the_default() -> None:
    rule = Mapping.from_dict(mapping(None)).outbound("TimeEntry")[0]
    assert rule.unwanted == "delete"
    with pytest.raises(MappingSpecError, match="unwanted"):
        Mapping.from_dict(mapping("archive"))
