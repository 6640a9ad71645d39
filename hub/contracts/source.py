"""The Source contract (hub.spi.Source) as an abstract test suite every source runs.

Subclass `SourceContract` in a test module as `Test<Something>`, implement the hooks, and pytest
runs every test below against your source. Hooks may keep state on `self` (set it up in
`make_source`): pytest builds a fresh instance for each test.

Systems that assign their own keys (database ids) return the assigned key from `write`; the
suite then uses it wherever it names sample i (`key_of(i)`), including in `remove`.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate

from hub.spi import JSON, Batch, Change, ObjectSchema, Source


class SourceContract(ABC):
    """Abstract suite: `make_source`, `object_name`, `write`, `remove`, `sample` are the hooks."""

    emits_deletes: bool = True
    """False for sources that express deletes only by absence from `current_keys`."""

    count: int = 7
    """How many sample records the tests write."""

    @abstractmethod
    def make_source(self, tmp_path: Path) -> Source:
        """A fresh source over an empty system (files under `tmp_path` if it needs any)."""

    @property
    @abstractmethod
    def object_name(self) -> str:
        """The object type the tests write and read."""

    @abstractmethod
    def write(self, object: str, key: str, record: dict[str, Any]) -> str | None:
        """Make the system hold `record` under `key` (an upsert the source will see).

        Return the key the system assigned when it chooses its own (None: `key` itself).
        """

    @abstractmethod
    def remove(self, object: str, key: str) -> None:
        """Delete `key` (as the source reports it) in the system; call pytest.skip() if the
        source cannot see deletes."""

    @abstractmethod
    def sample(self, i: int) -> dict[str, Any]:
        """A valid record whose key is str(i)."""

    # -- helpers ----------------------------------------------------------------------------

    def write_samples(self, keys: Iterable[int]) -> None:
        assigned: dict[int, str] = self.__dict__.setdefault("_assigned_keys", {})
        for i in keys:
            given = self.write(self.object_name, str(i), self.sample(i))
            assigned[i] = str(i) if given is None else given

    def key_of(self, i: int) -> str:
        """The key the source reports for sample i (the system's own key, if it assigned one)."""
        assigned: dict[int, str] = self.__dict__.get("_assigned_keys", {})
        return assigned.get(i, str(i))

    def keys_of(self, samples: Iterable[int]) -> set[str]:
        return {self.key_of(i) for i in samples}

    def read_all(
        self, source: Source, checkpoint: JSON | None = None, batch_size: int = 3
    ) -> tuple[list[Batch], JSON | None]:
        """Every batch after `checkpoint`, and the checkpoint to resume from afterwards."""
        batches = list(source.read(checkpoint, batch_size))
        return batches, (batches[-1].checkpoint if batches else checkpoint)

    def changes(self, batches: Iterable[Batch]) -> list[Change]:
        return [c for b in batches for c in b.changes if c.object == self.object_name]

    def schema_of(self, source: Source) -> ObjectSchema:
        found = [s for s in source.discover() if s.object == self.object_name]
        assert len(found) == 1, f"discover() must list {self.object_name!r} exactly once"
        return found[0]

    def assert_well_formed(self, change: Change) -> None:
        """The types ingest relies on: text key and position, a datetime or None as time."""
        assert isinstance(change.key, str), f"key must be text: {change.key!r}"
        assert change.op in ("upsert", "delete"), f"op must be upsert or delete: {change.op!r}"
        assert isinstance(change.position, str), f"position must be text: {change.position!r}"
        assert change.source_time is None or isinstance(change.source_time, dt.datetime), (
            f"source_time must be a datetime (aware) or None: {change.source_time!r}"
        )
        if change.op == "delete":
            assert change.record is None, f"a delete carries record=None: {change}"

    def expected(self, n: int | None = None) -> set[str]:
        return self.keys_of(range(self.count if n is None else n))

    # -- discovery --------------------------------------------------------------------------

    def test_is_a_source(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        assert isinstance(source, Source)
        assert isinstance(source.system, str) and source.system

    def test_discover_lists_the_object_with_a_valid_avro_record_schema(
        self, tmp_path: Path
    ) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(2))
        schema = self.schema_of(source)
        fastavro.parse_schema(schema.schema)
        assert schema.schema["type"] == "record"
        names = [f["name"] for f in schema.schema["fields"]]
        assert schema.key_field in names
        objects = [s.object for s in source.discover()]
        assert len(objects) == len(set(objects)), f"discover() lists an object twice: {objects}"

    # -- reading ----------------------------------------------------------------------------

    def test_reading_from_the_start_yields_every_record_once_valid_against_the_schema(
        self, tmp_path: Path
    ) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(self.count))
        schema = self.schema_of(source)
        parsed = fastavro.parse_schema(schema.schema)
        changes = self.changes(self.read_all(source)[0])
        assert [c.error for c in changes if c.error] == []
        assert Counter(c.key for c in changes) == Counter(self.expected())
        for change in changes:
            self.assert_well_formed(change)
            assert change.op == "upsert"
            assert change.record is not None
            validate(dict(change.record), parsed, raise_errors=True)
            assert str(change.record[schema.key_field]) == change.key

    @pytest.mark.parametrize("batch_size", [1, 2, 5])
    def test_batches_are_at_most_batch_size(self, tmp_path: Path, batch_size: int) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(self.count))
        batches, _ = self.read_all(source, batch_size=batch_size)
        assert all(len(b.changes) <= batch_size for b in batches)
        assert {c.key for c in self.changes(batches)} == self.expected()

    def test_resuming_from_every_checkpoint_loses_nothing(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(self.count))
        batches, _ = self.read_all(source, batch_size=2)
        assert len(batches) >= 2
        for k, batch in enumerate(batches):
            before = {c.key for c in self.changes(batches[: k + 1])}
            after = {c.key for c in self.changes(self.read_all(source, batch.checkpoint, 2)[0])}
            assert before | after == self.expected(), f"resuming after batch {k} lost records"

    def test_checkpoints_survive_a_json_round_trip(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(self.count))
        batches, final = self.read_all(source)
        for batch in batches:
            assert json.loads(json.dumps(batch.checkpoint)) == batch.checkpoint
        again, _ = self.read_all(source, json.loads(json.dumps(final)))
        assert self.changes(again) == []

    def test_reading_does_not_change_the_checkpoint_it_is_given(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(self.count))
        batches, _ = self.read_all(source, batch_size=2)
        self.write_samples(range(self.count, self.count + 2))
        for batch in batches:
            given = copy.deepcopy(batch.checkpoint)
            self.read_all(source, batch.checkpoint, 2)
            assert batch.checkpoint == given, "read() changed the checkpoint it was given"

    def test_changes_written_after_a_checkpoint_are_read_from_it(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(3))
        _, checkpoint = self.read_all(source)
        self.write_samples(range(3, 6))
        later = self.changes(self.read_all(source, checkpoint)[0])
        assert {c.key for c in later if c.op == "upsert"} >= self.keys_of(range(3, 6))

    def test_reading_from_the_final_checkpoint_yields_nothing_new(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(self.count))
        _, final = self.read_all(source)
        for _ in range(2):
            batches, final = self.read_all(source, final)
            assert self.changes(batches) == []

    # -- deletes ----------------------------------------------------------------------------

    def test_a_delete_after_a_checkpoint_is_read_as_a_delete(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(3))
        _, checkpoint = self.read_all(source)
        one = self.key_of(1)
        self.remove(self.object_name, one)
        if not self.emits_deletes:
            keys = source.current_keys(self.object_name)
            assert keys is not None and one not in keys
            return
        later = self.changes(self.read_all(source, checkpoint)[0])
        deletes = [c for c in later if c.key == one and c.op == "delete"]
        assert deletes, f"no delete change for key {one!r} in {later}"
        for change in deletes:
            self.assert_well_formed(change)

    def test_reading_from_the_start_ends_with_the_delete(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(3))
        one = self.key_of(1)
        self.remove(self.object_name, one)
        if not self.emits_deletes:
            pytest.skip("this source expresses deletes only through current_keys")
        changes = self.changes(self.read_all(source)[0])
        assert [c.op for c in changes if c.key == one][-1] == "delete"
        assert {c.key for c in changes if c.op == "upsert"} >= self.keys_of([0, 2])

    def test_current_keys_is_none_or_the_live_keys(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(3))
        keys = source.current_keys(self.object_name)
        assert keys is None or keys == self.keys_of(range(3))

    def test_current_keys_leaves_out_deleted_keys(self, tmp_path: Path) -> None:
        source = self.make_source(tmp_path)
        self.write_samples(range(5))
        self.remove(self.object_name, self.key_of(2))
        keys = source.current_keys(self.object_name)
        assert keys is None or keys == self.keys_of([0, 1, 3, 4])
