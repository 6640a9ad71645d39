"""The service-provider interface: the only part of `hub` that connectors import.

A connector package exposes a class registered under the `synchub.connectors` entry-point
group (the entry point's name is the `type` users write in the config) and is installed into
the venv synchub runs from. It is built as `Connector(name, options, base_dir)` from its config
section and offers a Source, a Sink, or both. Both interfaces have contract suites in
`hub.contracts` that every connector runs. docs/connectors.md is the guide.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hub.cursor import OverlapCursor
from hub.errors import ConnectorError
from hub.types import (
    JSON,
    Batch,
    Change,
    Delta,
    DeltaOp,
    ObjectSchema,
    Outcome,
    OutcomeStatus,
    SourceOp,
)

__all__ = [
    "JSON",
    "Batch",
    "Change",
    "Connector",
    "ConnectorError",
    "Delta",
    "DeltaOp",
    "ObjectSchema",
    "Outcome",
    "OutcomeStatus",
    "OverlapCursor",
    "ReadsBack",
    "Sink",
    "Source",
    "SourceOp",
    "WholeRecords",
    "same_value",
]


@runtime_checkable
class Source(Protocol):
    """Reads changes from one system.

    Contract (checked by hub.contracts.source unless marked *unchecked*):
    - `system` is the connector's name from the config (non-empty).
    - `discover()` lists every object type once, as ObjectSchema(object, key_field, schema):
      an Avro record schema (a dict) containing `key_field`. Schemas may only evolve
      compatibly (new fields nullable with a default). A change of an object `discover` did
      not list is quarantined.
    - `read(checkpoint, batch_size)` yields the changes after `checkpoint` (None: from the
      start) in batches of at most `batch_size` changes, each batch with a JSON-serialisable
      checkpoint that covers it and all before it. Resuming from any yielded checkpoint loses
      nothing; it may repeat changes (ingest drops repeats), never skip them. Reading from the
      final checkpoint yields no changes. Yield a new checkpoint object per batch (not one
      dict mutated in place) and do not mutate the checkpoint passed in.
    - Each Change has `key` as text (the key field's value), `op` "upsert" with the full
      record, or "delete" with `record=None`; `position` (text) is the source's own position
      and `source_time` a datetime (aware; naive is read as UTC) or None when the system does
      not say when the change happened.
    - Never raise for bad data: input that cannot be decoded is yielded with `record=None`,
      `error` (what, where, how to fix) and `raw` (the input as text); records that decode but
      do not fit the schema are yielded as they are (ingest validates and quarantines them).
      Raise ConnectorError only for I/O, protocol or configuration problems (*unchecked*).
    - `current_keys(object)` lists every key that exists now (hard-delete reconciliation:
      a missing key becomes a delete), or None when the source cannot list keys. Never a
      partial answer.
    - `close()` releases connections and files.
    """

    system: str

    def discover(self) -> list[ObjectSchema]: ...

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]: ...

    def current_keys(self, object: str) -> set[str] | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Writes deltas to one system.

    Contract (checked by hub.contracts.sink unless marked *unchecked*):
    - `apply(deltas)` answers with exactly one Outcome per delta, in the same order, each
      carrying the delta's idempotency key; `[]` gets `[]`.
    - A delta whose idempotency key was applied before is not written again: the answer is
      `applied` with the same target key as the first time. "Before" includes before a
      restart: the executor re-sends a write whose outcome it did not record, to a new Sink
      instance, so remember applied keys in the target (a marker on the record, a table, the
      files written), not only in memory. The same key twice in one call is written once.
    - `applied` carries `target_key`, the target's id of the record (ids the target assigns on
      create come back this way). `retryable` means nothing was written (*unchecked*); set
      `retry_after` when the target says. `rejected` means the target refused for good and
      `reason` says why, in the target's words.
    - A delta with `target_key=None` is a create; a delete without a target key is rejected.
    - Raising from `apply` (ConnectorError) makes every delta of the call retryable.
    """

    system: str

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]: ...

    def close(self) -> None: ...


@runtime_checkable
class ReadsBack(Protocol):
    """A Sink that says how the records it writes read back through its system's Source.

    The planner compares what a target record should hold (in the fields deltas are written
    in) with what the target is known to hold. When the target is also a source, the freshest
    knowledge is the record the source captured (a person may have edited it). A sink whose
    field names or units differ from the captured record's (writes `hours`, the source reads
    `duration` in seconds) must translate, or every pass would see a difference and write
    again: the planner uses the captured record only through `read_back`, and falls back to
    what it last wrote when a sink does not offer it.

    Contract (checked by the sink contract suite when the connector also has a source):
    - `read_back(object, record)` is `record` (as the source captured the record of `object`
      with the written target key) in the fields a delta of `object` is written in, for every
      field the sink can tell; after a write of fields F is applied and captured, the answer
      holds F with the values written (numbers compared as numbers). None: it cannot say for
      this record (the planner then uses the last applied write). Pure: no I/O.
    """

    def read_back(self, object: str, record: Mapping[str, Any]) -> dict[str, Any] | None: ...


@runtime_checkable
class WholeRecords(Protocol):
    """A Sink that wants the whole desired record, not the minimal delta, for some objects.

    A sink that writes one target record to several places (a tag's metadata into the
    accounts of the people on a project) cannot complete a place that lacks the record from
    the changed fields alone. For an object in `whole_record_objects`, a delta's `fields` are
    every field the mapping gives the record; writing them must stay idempotent by state.
    """

    whole_record_objects: frozenset[str]


class Connector(Protocol):
    """What an entry point builds from a config section: `Cls(name, options, base_dir)`."""

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None: ...

    def source(self) -> Source | None: ...

    def sink(self) -> Sink | None: ...


def same_value(known: Any, desired: Any) -> bool:
    """Whether the target holds `desired`: equal values, or equal numbers when one side is a
    number and the other a number or its text (a Decimal is stored as text: `"1.5"` is what
    a sink that reads back `1.5` holds)."""
    if known == desired:
        return True
    if _is_number(known) or _is_number(desired):
        a, b = _as_number(known), _as_number(desired)
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            return False  # an infinite number equals only itself (`known == desired` above)
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: Any) -> float | None:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None
