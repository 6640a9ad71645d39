"""Filedrop sink specifics: file layout, value encoding, rejections, atomic retryable writes."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import json
import os
import re
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest

from connectors.filedrop import FiledropConnector, FiledropSink
from hub.spi import Delta
from hub.types import DeltaOp

NAME = re.compile(r"^(?P<object>.+)-\d{8}T\d{6}\.\d{6}-\d+\.(?P<ext>jsonl|csv)$")


def make(tmp_path: Path, fmt: Literal["jsonl", "csv"] = "jsonl") -> FiledropSink:
    sink = FiledropConnector("erp", {"outbox": "outbox", "outbox_format": fmt}, tmp_path).sink()
    assert isinstance(sink, FiledropSink)
    return sink


def delta(
    i: int,
    fields: dict[str, Any] | None = None,
    *,
    obj: str = "timesheet_lines",
    op: DeltaOp = "create",
    target_key: str | None = None,
    key: str | None = None,
) -> Delta:
    return Delta(
        target="erp",
        object=obj,
        canonical_id=f"TimeEntry/{i}",
        target_key=target_key,
        op=op,
        fields={"hours": i} if fields is None else fields,
        idempotency_key=key or f"k{i}-{op}",
    )


def outbox_files(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "outbox").rglob("*") if p.is_file())


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_one_file_per_object_with_reserved_columns_first(tmp_path: Path) -> None:
    sink = make(tmp_path)
    outcomes = sink.apply([delta(1), delta(2, obj="projects"), delta(3)])
    assert [o.status for o in outcomes] == ["applied"] * 3
    paths = outbox_files(tmp_path)
    names = [m["object"] for p in paths if (m := NAME.match(p.name))]
    assert sorted(names) == ["projects", "timesheet_lines"]
    lines = next(p for p in paths if p.name.startswith("timesheet_lines"))
    rows = jsonl(lines)
    assert [list(r) for r in rows] == [
        ["idempotency_key", "op", "target_key", "canonical_id", "hours"]
    ] * 2
    assert rows[0] == {
        "idempotency_key": "k1-create",
        "op": "create",
        "target_key": "1",
        "canonical_id": "TimeEntry/1",
        "hours": 1,
    }
    assert outcomes[0].details == {"file": lines.name}


def test_target_key_is_the_deltas_or_the_canonical_ids_tail(tmp_path: Path) -> None:
    sink = make(tmp_path)
    plain = Delta("erp", "x", "TimeEntry/a/b", None, "create", {}, "k1")
    bare = Delta("erp", "x", "no-slash", None, "create", {}, "k2")
    given = Delta("erp", "x", "TimeEntry/7", "T-7", "update", {}, "k3")
    assert [o.target_key for o in sink.apply([plain, bare, given])] == ["a/b", "no-slash", "T-7"]


def test_values_are_written_as_plain_json(tmp_path: Path) -> None:
    sink = make(tmp_path)
    fields = {
        "amount": Decimal("12.50"),
        "day": dt.date(2024, 5, 1),
        "at": dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.UTC),
        "tags": ("a", "b"),
        "meta": {"n": Decimal("1")},
        "note": "café",
        "none": None,
    }
    sink.apply([delta(1, fields)])
    (row,) = jsonl(outbox_files(tmp_path)[0])
    assert {k: row[k] for k in fields} == {
        "amount": "12.50",
        "day": "2024-05-01",
        "at": "2024-05-01T08:30:00+00:00",
        "tags": ["a", "b"],
        "meta": {"n": "1"},
        "note": "café",
        "none": None,
    }


def test_csv_header_is_the_union_of_columns(tmp_path: Path) -> None:
    sink = make(tmp_path, "csv")
    sink.apply(
        [
            delta(1, {"hours": 1.5, "ok": True}),
            delta(2, {"note": 'a, "b"\nc', "tags": [1, 2], "hours": None}),
        ]
    )
    (path,) = outbox_files(tmp_path)
    assert path.suffix == ".csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text("utf-8"), newline="")))
    assert list(rows[0]) == [
        "idempotency_key",
        "op",
        "target_key",
        "canonical_id",
        "hours",
        "ok",
        "note",
        "tags",
    ]
    assert {k: rows[0][k] for k in ("hours", "ok", "note", "tags")} == {
        "hours": "1.5",
        "ok": "true",
        "note": "",
        "tags": "",
    }
    assert {k: rows[1][k] for k in ("hours", "ok", "note", "tags")} == {
        "hours": "",
        "ok": "",
        "note": 'a, "b"\nc',
        "tags": "[1,2]",
    }


def test_unrepresentable_deltas_are_rejected_and_the_rest_applied(tmp_path: Path) -> None:
    sink = make(tmp_path)
    outcomes = sink.apply(
        [
            delta(1, {"blob": b"\x00"}),
            delta(2, {"ratio": float("nan")}),
            delta(3, op="delete"),
            delta(4, {"op": "x"}),
            delta(5, {"when": {1: "x"}}),
            delta(6),
        ]
    )
    assert [o.status for o in outcomes] == ["rejected"] * 5 + ["applied"]
    reasons = [o.reason or "" for o in outcomes[:5]]
    assert "field 'blob'" in reasons[0] and "bytes" in reasons[0]
    assert "field 'ratio'" in reasons[1] and "nan" in reasons[1]
    assert "no target_key" in reasons[2]
    assert "clash" in reasons[3] and "'op'" in reasons[3]
    assert "non-string keys" in reasons[4]
    assert [r["canonical_id"] for r in jsonl(outbox_files(tmp_path)[0])] == ["TimeEntry/6"]


def test_a_failed_write_is_retryable_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make(tmp_path)

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    outcomes = sink.apply([delta(1), delta(2)])
    assert [o.status for o in outcomes] == ["retryable", "retryable"]
    assert "No space left on device" in (outcomes[0].reason or "")
    assert list((tmp_path / "outbox").iterdir()) == []  # no temp file, no partial file
    monkeypatch.undo()
    again = sink.apply([delta(1), delta(2)])
    assert [o.status for o in again] == ["applied", "applied"]
    assert len(jsonl(outbox_files(tmp_path)[0])) == 2


def test_a_write_that_fails_after_its_rename_is_not_written_again_on_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync of the outbox folder fails (EIO) after the file was renamed into place: the answer
    is retryable, and the retry must find the rows already there instead of writing them twice."""
    sink = make(tmp_path)
    fsync = os.fsync

    def failing_dir_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "Input/output error")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_dir_fsync)
    outcomes = sink.apply([delta(1)])
    assert [o.status for o in outcomes] == ["retryable"]
    monkeypatch.undo()
    again = sink.apply([delta(1)])
    assert [o.status for o in again] == ["applied"]
    rows = [r for path in outbox_files(tmp_path) for r in jsonl(path)]
    assert [r["canonical_id"] for r in rows] == ["TimeEntry/1"], "a row was written twice"


def test_an_unwritable_outbox_is_retryable(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("a file where the outbox folder should be")
    outcomes = make(tmp_path).apply([delta(1)])
    assert outcomes[0].status == "retryable"
    assert "outbox" in (outcomes[0].reason or "")


def test_idempotency_survives_a_restart_and_moved_files(tmp_path: Path) -> None:
    first = make(tmp_path).apply([delta(1), delta(2, target_key="T-2", op="update")])
    (path,) = outbox_files(tmp_path)
    (tmp_path / "outbox" / "done").mkdir()
    path.rename(tmp_path / "outbox" / "done" / path.name)  # the other system consumed it
    restarted = make(tmp_path)
    again = restarted.apply([delta(2, target_key="T-2", op="update"), delta(1), delta(3)])
    assert [(o.status, o.target_key) for o in again] == [
        ("applied", "T-2"),
        ("applied", "1"),
        ("applied", "3"),
    ]
    assert [o.target_key for o in first] == ["1", "T-2"]
    written = [r["idempotency_key"] for p in outbox_files(tmp_path) for r in jsonl(p)]
    assert sorted(written) == ["k1-create", "k2-update", "k3-create"]


def test_idempotency_index_reads_csv_outbox_files(tmp_path: Path) -> None:
    make(tmp_path, "csv").apply([delta(1, {"note": "x,\ny"})])
    again = make(tmp_path, "csv").apply([delta(1, {"note": "x,\ny"})])
    assert again[0].status == "applied" and again[0].target_key == "1"
    assert len(outbox_files(tmp_path)) == 1


def test_object_names_are_made_safe_for_file_names(tmp_path: Path) -> None:
    make(tmp_path).apply([delta(1, obj="../time entries")])
    (path,) = outbox_files(tmp_path)
    assert path.parent == tmp_path / "outbox"
    assert path.name.startswith("_time_entries-")


def test_a_csv_field_longer_than_csv_readers_take_is_rejected(tmp_path: Path) -> None:
    """The sink reads its own outbox back for idempotency: a CSV field it could not read back
    would lose the row's key, and a re-send would write the row twice."""
    sink = make(tmp_path, "csv")
    huge = "x" * (csv.field_size_limit() + 1)
    long, short = sink.apply([delta(1, {"note": huge}), delta(2, {"note": "fine"})])
    assert long.status == "rejected" and "more than CSV readers take" in (long.reason or "")
    assert "outbox_format jsonl" in (long.reason or "")
    assert short.status == "applied"
    assert make(tmp_path, "csv").apply([delta(2, {"note": "fine"})])[0].status == "applied"
    assert len(outbox_files(tmp_path)) == 1
    assert make(tmp_path, "jsonl").apply([delta(3, {"note": huge})])[0].status == "applied"


def test_temp_files_of_killed_writes_are_removed_once_stale(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    stale, fresh, other = outbox / ".abc123.tmp", outbox / ".def456.tmp", outbox / ".keep"
    for path in (stale, fresh, other):
        path.write_text("half a write")
    hours_ago = dt.datetime.now().timestamp() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    os.utime(other, (hours_ago, hours_ago))
    assert make(tmp_path).apply([delta(1)])[0].status == "applied"
    assert not stale.exists()
    assert fresh.exists() and other.exists()  # maybe a write in progress; not a temp file


def test_two_writers_on_one_outbox_see_each_others_writes(tmp_path: Path) -> None:
    """Several outbound workers of one target: a write another process made (with its
    idempotency key) is not made again, though this sink scanned the outbox before it."""
    a, b = make(tmp_path), make(tmp_path)
    assert [o.status for o in b.apply([delta(1)])] == ["applied"]  # b has scanned the outbox
    assert [o.status for o in a.apply([delta(2)])] == ["applied"]
    again = b.apply([delta(2), delta(3)])  # a's write of 2, then b takes over its work
    assert [o.status for o in again] == ["applied", "applied"]
    keys = [row["idempotency_key"] for p in outbox_files(tmp_path) for row in jsonl(p)]
    assert sorted(keys) == ["k1-create", "k2-create", "k3-create"]
    names = [p.name for p in outbox_files(tmp_path)]
    assert len(set(names)) == len(names) == 3 and all(NAME.match(n) for n in names)
