"""In-memory connectors with fault injection, for tests and for connector authors.

`MemorySource` behaves like a table polled by a modification stamp through `OverlapCursor`:
late commits (a stamp older than one already read) inside the cursor's `lag` window are still
captured exactly once. `MemorySink` behaves like an idempotent target; `fail_next` and
`reject_when` make it answer `retryable` / `rejected` without writing.

Both satisfy `hub.spi.Source` / `hub.spi.Sink` and pass the contract suites in
`hub.contracts`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.spi import (
    JSON,
    Batch,
    Change,
    ConnectorError,
    Delta,
    ObjectSchema,
    Outcome,
    OutcomeStatus,
    OverlapCursor,
    Sink,
    Source,
    SourceOp,
)

__all__ = ["MemorySink", "MemorySource", "Wired"]


@dataclass(frozen=True, slots=True)
class _Row:
    """The current version of one record (a tombstone when `record` is None)."""

    object: str
    key: str
    record: dict[str, Any] | None
    stamp: float
    version: int


class MemorySource:
    """A Source over an in-memory table per object, polled with an OverlapCursor.

    `put` / `delete` write a record with a commit stamp (default: one more than the newest
    stamp so far). The checkpoint is the cursor's JSON. `fail_next_read(n)` makes the next n
    `read` calls raise ConnectorError, as an unreachable system would.
    """

    def __init__(
        self,
        system: str = "memory",
        objects: Mapping[str, ObjectSchema] | None = None,
        lag: float = 2.0,
    ) -> None:
        self.system = system
        self.objects: dict[str, ObjectSchema] = dict(objects or {})
        self.lag = lag
        self.reads = 0
        self._rows: dict[tuple[str, str], _Row] = {}
        self._clock = 0.0
        self._version = 0
        self._failures: deque[str] = deque()
        self.closed = False

    # -- the system's side ------------------------------------------------------------------

    def put(
        self, object: str, key: str, record: Mapping[str, Any], *, stamp: float | None = None
    ) -> None:
        """Insert or update `key` (committed at `stamp`)."""
        self._write(object, key, dict(record), stamp)

    def delete(self, object: str, key: str, *, stamp: float | None = None) -> None:
        """Delete `key` (a tombstone committed at `stamp`, so polling sees the delete)."""
        if (object, key) not in self._rows:
            raise KeyError(f"{object}/{key} does not exist in {self.system}")
        self._write(object, key, None, stamp)

    def fail_next_read(self, n: int = 1, reason: str = "connection refused") -> None:
        """Make the next `n` calls to `read` raise ConnectorError(reason)."""
        self._failures.extend([reason] * n)

    def _write(
        self, object: str, key: str, record: dict[str, Any] | None, stamp: float | None
    ) -> None:
        if object not in self.objects:
            raise KeyError(f"unknown object {object!r}; MemorySource has {sorted(self.objects)}")
        if stamp is None:
            stamp = self._clock + 1
        self._clock = max(self._clock, stamp)
        self._version += 1
        self._rows[object, key] = _Row(object, key, record, stamp, self._version)

    # -- Source -----------------------------------------------------------------------------

    def discover(self) -> list[ObjectSchema]:
        """The schemas given at construction."""
        return list(self.objects.values())

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        """Rows with stamp ≥ cursor.since(), in (stamp, version) order, each admitted once."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if self.closed:
            raise ConnectorError(f"MemorySource {self.system!r} is closed")
        self.reads += 1
        if self._failures:
            raise ConnectorError(f"{self.system}: {self._failures.popleft()}")
        cursor = OverlapCursor.from_json(checkpoint, self.lag)
        since = cursor.since()
        rows = sorted(
            (r for r in self._rows.values() if since is None or r.stamp >= since),
            key=lambda r: (r.stamp, r.version),
        )
        pending: list[Change] = []
        for row in rows:
            if not cursor.admit(f"{row.object}/{row.key}", str(row.version), row.stamp):
                continue
            op: SourceOp = "upsert" if row.record is not None else "delete"
            record = None if row.record is None else dict(row.record)
            pending.append(Change(row.object, row.key, op, record, f"{row.stamp}:{row.version}"))
            if len(pending) >= batch_size:
                yield Batch(tuple(pending), cursor.to_json())
                pending = []
        if pending:  # without admitted rows the cursor did not move
            yield Batch(tuple(pending), cursor.to_json())

    def current_keys(self, object: str) -> set[str] | None:
        """Every live key of `object`."""
        return {k for (o, k), row in self._rows.items() if o == object and row.record is not None}

    def close(self) -> None:
        self.closed = True


Fault = tuple[OutcomeStatus, str, float | None]


class MemorySink:
    """A Sink holding target records in memory, idempotent by idempotency key.

    `applied` maps each applied idempotency key to (target key, delta); `records` holds the
    current state per target key (updates merge fields, deletes remove); `writes` counts real
    writes. Creates without a target key get the next id "1", "2", ...
    """

    def __init__(self, system: str = "memory") -> None:
        self.system = system
        self.applied: dict[str, tuple[str, Delta]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.calls = 0
        self._faults: deque[Fault] = deque()
        self._rejector: Callable[[Delta], str | None] | None = None
        self._next_id = 0
        self.closed = False

    def fail_next(
        self,
        n: int,
        *,
        status: OutcomeStatus = "retryable",
        retry_after: float | None = None,
        reason: str = "429 Too Many Requests",
    ) -> None:
        """Answer the next `n` deltas with `status` (and `retry_after`), writing nothing."""
        if status == "applied":
            raise ValueError("fail_next injects failures: use status 'retryable' or 'rejected'")
        self._faults.extend([(status, reason, retry_after)] * n)

    def reject_when(self, predicate: Callable[[Delta], str | None] | None) -> None:
        """Reject every delta for which `predicate` returns a reason (None clears it)."""
        self._rejector = predicate

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        """One Outcome per delta, in order; already-applied keys are answered, not rewritten."""
        if self.closed:
            raise ConnectorError(f"MemorySink {self.system!r} is closed")
        self.calls += 1
        return [self._apply_one(delta) for delta in deltas]

    def close(self) -> None:
        self.closed = True

    def read_back(self, object: str, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """A record captured from this system is in the terms deltas are written in: as is."""
        return dict(record)

    def _apply_one(self, delta: Delta) -> Outcome:
        key = delta.idempotency_key
        if self._faults:
            status, reason, retry_after = self._faults.popleft()
            return Outcome(key, status, reason=reason, retry_after=retry_after)
        if key in self.applied:
            return Outcome(key, "applied", target_key=self.applied[key][0])
        refusal = self._rejector(delta) if self._rejector is not None else None
        if refusal is not None:
            return Outcome(key, "rejected", reason=refusal)
        if delta.op == "delete" and delta.target_key is None:
            return Outcome(key, "rejected", reason="cannot delete a record without its target_key")
        target_key = delta.target_key
        if target_key is None:
            self._next_id += 1
            target_key = str(self._next_id)
        if delta.op == "delete":
            self.records.pop(target_key, None)
        else:
            self.records.setdefault(target_key, {}).update(delta.fields)
        self.writes += 1
        self.applied[key] = (target_key, delta)
        return Outcome(key, "applied", target_key=target_key)


class Wired:
    """A ready-made connector: hands out the source and/or sink it was given.

    `Hub(settings, {"erp": Wired(source, sink)})` runs the hub on connectors built in code
    (tests, benchmarks, embedding) instead of from the config's entry points.
    """

    def __init__(self, source: Source | None = None, sink: Sink | None = None) -> None:
        self._source, self._sink = source, sink

    def source(self) -> Source | None:
        return self._source

    def sink(self) -> Sink | None:
        return self._sink
