"""The contract suites run against the in-memory fakes of hub.testing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.contracts.sink import SinkContract
from hub.contracts.source import SourceContract
from hub.spi import ObjectSchema, Sink, Source
from hub.testing import MemorySink, MemorySource

THING = ObjectSchema(
    object="thing",
    key_field="id",
    schema={
        "type": "record",
        "name": "thing",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "n", "type": "long"},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    },
)


class TestMemorySource(SourceContract):
    object_name = "thing"

    def make_source(self, tmp_path: Path) -> Source:
        self.source = MemorySource(objects={"thing": THING})
        return self.source

    def write(self, object: str, key: str, record: dict[str, Any]) -> None:
        self.source.put(object, key, record)

    def remove(self, object: str, key: str) -> None:
        self.source.delete(object, key)

    def sample(self, i: int) -> dict[str, Any]:
        return {"id": str(i), "n": i * 10, "note": None if i % 2 else f"note {i}"}


class TestMemorySink(SinkContract):
    object_name = "thing"

    def make_sink(self, tmp_path: Path) -> Sink:
        self.sink = MemorySink()
        return self.sink

    def fields(self, i: int) -> dict[str, Any]:
        return {"name": f"thing {i}", "minutes": 15 * i, "billable": i % 2 == 0}

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        return self.sink.records.get(target_key)

    def captured(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        return self.sink.records.get(target_key)  # what a source over the memory would say

    def count(self, sink: Sink) -> int:
        return self.sink.writes
