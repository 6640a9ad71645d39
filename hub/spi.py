"""The service-provider interface: the only part of `hub` that connectors import.

A connector package exposes a class registered under the `synchub.connectors` entry-point
group. It is built as `Connector(name, options, base_dir)` from its config section and offers a
Source, a Sink, or both. Both interfaces have contract suites in `tests/contracts/` that every
connector runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hub.cursor import OverlapCursor
from hub.errors import ConnectorError
from hub.types import JSON, Batch, Change, Delta, ObjectSchema, Outcome

__all__ = [
    "JSON",
    "Batch",
    "Change",
    "Connector",
    "ConnectorError",
    "Delta",
    "ObjectSchema",
    "Outcome",
    "OverlapCursor",
    "Sink",
    "Source",
]


@runtime_checkable
class Source(Protocol):
    """Reads changes from one system.

    Contract:
    - `discover` lists every object type with its Avro record schema and key field.
    - `read(checkpoint, batch_size)` yields the changes after `checkpoint` (None: from the
      start) in batches of at most `batch_size` changes, each batch with a checkpoint that
      covers it and all before it. Resuming from any yielded checkpoint loses nothing; it may
      repeat changes (ingest drops repeats), never skip them.
    - `current_keys(object)` lists every key that exists now (for hard-delete reconciliation),
      or None when the source cannot list keys.
    - Records match the discovered schema or raise nothing: invalid records are still yielded
      (ingest validates and quarantines them with a clear error).
    """

    system: str

    def discover(self) -> list[ObjectSchema]: ...

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]: ...

    def current_keys(self, object: str) -> set[str] | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Writes deltas to one system.

    Contract:
    - `apply(deltas)` answers with exactly one Outcome per delta, in the same order, each
      carrying the delta's idempotency key.
    - A delta whose idempotency key was applied before is not written again: the answer is
      `applied` with the same target key as the first time.
    - `retryable` means nothing was written; `rejected` means the target refused for good and
      `reason` says why.
    """

    system: str

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]: ...

    def close(self) -> None: ...


class Connector(Protocol):
    """What an entry point builds from a config section: `Cls(name, options, base_dir)`."""

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None: ...

    def source(self) -> Source | None: ...

    def sink(self) -> Sink | None: ...
