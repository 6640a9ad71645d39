"""The nouns that cross module boundaries: frozen values, no I/O.

A Source yields `Batch`es of `Change`s; ingest turns them into events. The outbound planner
produces `Delta`s; a Sink answers each with one `Outcome`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = Any
"""A JSON-serialisable value (dicts, lists, str, int, float, bool, None)."""

SourceOp = Literal["upsert", "delete"]
DeltaOp = Literal["create", "update", "delete"]
OutcomeStatus = Literal["applied", "retryable", "rejected"]


@dataclass(frozen=True, slots=True)
class ObjectSchema:
    """What a source says about one of its object types.

    `schema` is an Avro record schema (a dict) describing the full record; `key_field` names the
    field that identifies a record within the object type.
    """

    object: str
    key_field: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """One change captured from a source: the full record after the change (None for deletes).

    `position` is the source's own opaque position of this change (a file offset, an LSN, a
    server timestamp) and `source_time` the time the source says the change happened.

    A source that cannot even decode an input (invalid UTF-8, broken JSON) still yields it, with
    `error` saying what is wrong and `raw` holding the input as text (undecodable bytes escaped);
    ingest quarantines it, so the problem is visible and nothing after it is lost.
    """

    object: str
    key: str
    op: SourceOp
    record: Mapping[str, Any] | None
    position: str = ""
    source_time: dt.datetime | None = None
    error: str | None = None
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Changes read together, and the checkpoint to store once they are durably appended.

    `checkpoint` is opaque to the hub (JSON-serialisable) and is handed back to the source on
    the next read. A batch with no changes may still advance the checkpoint.
    """

    changes: tuple[Change, ...]
    checkpoint: JSON


@dataclass(frozen=True, slots=True)
class Delta:
    """The minimal write that makes one target record match the desired state.

    `target_key` is the target's own id when known (None → create). `idempotency_key` is the
    same for every attempt of the same write, so a sink can recognise a repeat.
    """

    target: str
    object: str
    canonical_id: str
    target_key: str | None
    op: DeltaOp
    fields: Mapping[str, Any]
    idempotency_key: str
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """A sink's answer to one delta.

    applied   → `target_key` is the target's id of the written record; `reason`, if any, is a
                note on how it was written that a person should know (e.g. a text shortened to
                fit), recorded in the WriteAttempted event and shown by `exceptions show`;
    retryable → try again later (`retry_after` seconds, if the target said so);
    rejected  → the target refused for good; `reason` says why, in the target's words.
    """

    idempotency_key: str
    status: OutcomeStatus
    target_key: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
