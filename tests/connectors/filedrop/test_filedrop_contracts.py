"""The Source and Sink contract suites run against filedrop, in each of its modes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from connectors.filedrop import FiledropConnector
from hub.contracts.sink import SinkContract
from hub.contracts.source import SourceContract
from hub.spi import Sink, Source

RESERVED = ("idempotency_key", "op", "target_key", "canonical_id")


def outbox_rows(outbox: Path) -> list[dict[str, Any]]:
    """Every row of every outbox file, files in name order (= write order)."""
    rows: list[dict[str, Any]] = []
    for path in sorted(outbox.rglob("*"), key=lambda p: p.name):
        if path.name.startswith(".") or not path.is_file():
            continue
        text = path.read_text("utf-8")
        if path.suffix == ".csv":
            rows.extend(csv.DictReader(io.StringIO(text, newline="")))
        else:
            rows.extend(json.loads(line) for line in text.splitlines())
    return rows


def outbox_state(outbox: Path, target_key: str) -> dict[str, Any] | None:
    """The state the other system ends up with for `target_key` after importing every file."""
    state: dict[str, Any] | None = None
    for row in outbox_rows(outbox):
        if row["target_key"] != target_key:
            continue
        if row["op"] == "delete":
            state = None
            continue
        state = dict(state or {})
        state.update({k: v for k, v in row.items() if k not in RESERVED and v != ""})
    return state


def connector(tmp_path: Path, options: dict[str, Any]) -> FiledropConnector:
    return FiledropConnector("legacy_erp", options, tmp_path)


def append_csv(path: Path, columns: list[str], row: dict[str, Any]) -> None:
    """Append one row (writing the header first if the file is new), as an exporter would."""
    new = not path.exists()
    with path.open("a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="", lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow({k: _cell(v) for k, v in row.items()})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class TestFiledropCsvSource(SourceContract):
    """CSV with declared types, a delete marker column, three records per file."""

    object_name = "time_entries"
    columns = ["id", "minutes", "rate", "approved", "note", "deleted"]

    def make_source(self, tmp_path: Path) -> Source:
        self.inbox = tmp_path / "inbox"
        self.inbox.mkdir()
        self.writes = 0
        objects = {
            "time_entries": {
                "pattern": "time_*.csv",
                "key": "id",
                "fields": {
                    "id": "string",
                    "minutes": "long",
                    "rate": "double?",
                    "approved": "boolean",
                    "note": "string?",
                },
                "delete_field": "deleted",
            }
        }
        source = connector(tmp_path, {"directory": "inbox", "objects": objects}).source()
        assert source is not None
        return source

    def _append(self, row: dict[str, Any]) -> None:
        append_csv(self.inbox / f"time_{self.writes // 3:03d}.csv", self.columns, row)
        self.writes += 1

    def write(self, object: str, key: str, record: dict[str, Any]) -> None:
        self._append(record)

    def remove(self, object: str, key: str) -> None:
        self._append({"id": key, "deleted": "yes"})

    def sample(self, i: int) -> dict[str, Any]:
        return {
            "id": str(i),
            "minutes": 15 * i,
            "rate": None if i % 3 == 0 else 100.5 + i,
            "approved": i % 2 == 0,
            "note": f'entry {i}, "quoted"\nsecond line' if i % 2 else None,
        }


class TestFiledropJsonlSource(SourceContract):
    """JSONL without declared fields (types inferred), appended to, two records per file."""

    object_name = "entries"

    def make_source(self, tmp_path: Path) -> Source:
        self.inbox = tmp_path / "drop"
        self.inbox.mkdir()
        self.writes = 0
        objects = {
            "entries": {"pattern": "entries-*.ndjson", "key": "id", "delete_field": "_deleted"}
        }
        source = connector(tmp_path, {"directory": "drop", "objects": objects}).source()
        assert source is not None
        return source

    def _append(self, row: dict[str, Any]) -> None:
        path = self.inbox / f"entries-{self.writes // 2:03d}.ndjson"
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        self.writes += 1

    def write(self, object: str, key: str, record: dict[str, Any]) -> None:
        self._append(record)

    def remove(self, object: str, key: str) -> None:
        self._append({"id": int(key), "_deleted": True})

    def sample(self, i: int) -> dict[str, Any]:
        return {
            "id": i,
            "minutes": 15 * i,
            "rate": 1.5 * i,
            "approved": i % 2 == 0,
            "tags": ["a", str(i)],
            "client": f"Clïent {i}",
        }


class TestFiledropSnapshotSource(SourceContract):
    """Full exports (`snapshot: true`): deletes show only as absence from current_keys."""

    object_name = "clients"
    emits_deletes = False

    def make_source(self, tmp_path: Path) -> Source:
        self.inbox = tmp_path / "exports"
        self.inbox.mkdir()
        self.exports = 0
        self.live: dict[str, dict[str, Any]] = {}
        objects = {"clients": {"pattern": "export_*.csv", "key": "id", "snapshot": True}}
        source = connector(tmp_path, {"directory": "exports", "objects": objects}).source()
        assert source is not None
        return source

    def _path(self) -> Path:
        return self.inbox / f"export_{self.exports:03d}.csv"

    def write(self, object: str, key: str, record: dict[str, Any]) -> None:
        self.live[key] = record
        append_csv(self._path(), ["id", "name", "city"], record)

    def remove(self, object: str, key: str) -> None:
        del self.live[key]
        self.exports += 1
        for record in self.live.values():
            append_csv(self._path(), ["id", "name", "city"], record)

    def sample(self, i: int) -> dict[str, Any]:
        return {"id": str(i), "name": f"Client {i}", "city": "Lyon" if i % 2 else ""}


class TestFiledropJsonlSink(SinkContract):
    object_name = "timesheet_lines"

    def make_sink(self, tmp_path: Path) -> Sink:
        self.outbox = tmp_path / "outbox"
        sink = connector(tmp_path, {"outbox": "outbox"}).sink()
        assert sink is not None
        return sink

    def fields(self, i: int) -> dict[str, Any]:
        return {"hours": 1.5 * i, "project": f"P-{i}", "billable": i % 2 == 0, "note": None}

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        state = outbox_state(self.outbox, target_key)
        return None if state is None else {"note": None, **state}

    def reopen(self, sink: Sink, tmp_path: Path) -> Sink:
        return self.make_sink(tmp_path)  # the same outbox

    def count(self, sink: Sink) -> int:
        return len(outbox_rows(self.outbox)) if self.outbox.exists() else 0


class TestFiledropCsvSink(SinkContract):
    object_name = "timesheet_lines"

    def make_sink(self, tmp_path: Path) -> Sink:
        self.outbox = tmp_path / "to_erp"
        sink = connector(tmp_path, {"outbox": "to_erp", "outbox_format": "csv"}).sink()
        assert sink is not None
        return sink

    def fields(self, i: int) -> dict[str, Any]:
        return {"hours": str(1.5 * i), "project": f'P-{i}, "main"'}

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        return outbox_state(self.outbox, target_key)

    def reopen(self, sink: Sink, tmp_path: Path) -> Sink:
        return self.make_sink(tmp_path)  # the same outbox

    def count(self, sink: Sink) -> int:
        return len(outbox_rows(self.outbox)) if self.outbox.exists() else 0
