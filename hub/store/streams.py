"""Names in one place: the store's streams (builders and parsers), event types, and the
statuses and kinds the projections and the planner agree on.

Streams:

    source/<system>/<object>/<key>         one per source record (SourceChanged)
    connector/<name>                       a connector's checkpoints
    connector-errors/<name>                a connector's failed passes (ConnectorFailed)
    quarantine/<connector>                 records that could not become facts
    mapping/<name>                         deployed mapping versions
    outbound/<target>/<object>/<id>        writes planned and attempted for one target record
    exception/<id>                         an operator's (or synchub's) actions on an exception
    alert/<objective>                      a service-level objective's alerts and their delivery

Keys and ids may contain `/` (a canonical id is `Entity/natural id`): parsers split at most as
many times as the fixed parts need.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "IN_FLIGHT",
    "EventType",
    "ExceptionKind",
    "ExceptionStatus",
    "OutboundStatus",
    "OutboundStream",
    "SourceStream",
    "alert_stream",
    "connector_errors_stream",
    "connector_stream",
    "exception_stream",
    "mapping_stream",
    "outbound_stream",
    "parse_outbound_stream",
    "parse_source_stream",
    "quarantine_stream",
    "source_stream",
]


class EventType(StrEnum):
    """Every event type the hub appends."""

    SOURCE_CHANGED = "SourceChanged"
    CHECKPOINT_ADVANCED = "CheckpointAdvanced"
    RECORD_QUARANTINED = "RecordQuarantined"
    CONNECTOR_FAILED = "ConnectorFailed"
    MAPPING_DEPLOYED = "MappingDeployed"
    DELTA_PLANNED = "DeltaPlanned"
    PLAN_FAILED = "PlanFailed"
    WRITE_ATTEMPTED = "WriteAttempted"
    EXCEPTION_ACTION = "ExceptionAction"
    ALERT_RAISED = "AlertRaised"
    ALERT_DELIVERED = "AlertDelivered"


class OutboundStatus(StrEnum):
    """A target record's latest write (projections/outbound.py)."""

    PENDING = "pending"
    RETRYING = "retrying"
    APPLIED = "applied"
    FAILED = "failed"
    RESOLVED = "resolved"
    IGNORED = "ignored"


IN_FLIGHT = (OutboundStatus.PENDING, OutboundStatus.RETRYING)
"""A write whose outcome is not settled: one at a time per target record."""


class ExceptionStatus(StrEnum):
    OPEN = "open"
    RETRYING = "retrying"
    RESOLVED = "resolved"
    IGNORED = "ignored"


class ExceptionKind(StrEnum):
    """What went wrong: a record that could not become a fact (quarantine), be mapped, be
    planned (a target's checks refused it) or be written."""

    QUARANTINE = "quarantine"
    MAPPING = "mapping"
    PLAN = "plan"
    WRITE = "write"


def source_stream(system: str, obj: str, key: str) -> str:
    return f"source/{system}/{obj}/{key}"


def alert_stream(objective: str) -> str:
    return f"alert/{objective}"


def connector_stream(name: str) -> str:
    return f"connector/{name}"


def connector_errors_stream(name: str) -> str:
    return f"connector-errors/{name}"


def quarantine_stream(connector: str) -> str:
    return f"quarantine/{connector}"


def mapping_stream(name: str) -> str:
    return f"mapping/{name}"


def outbound_stream(target: str, obj: str, canonical_id: str) -> str:
    return f"outbound/{target}/{obj}/{canonical_id}"


def exception_stream(exception_id: str) -> str:
    return f"exception/{exception_id}"


class SourceStream(NamedTuple):
    system: str
    object: str
    key: str


class OutboundStream(NamedTuple):
    target: str
    object: str
    canonical_id: str


def parse_source_stream(stream: str) -> SourceStream | None:
    """(system, object, key) of a `source/...` stream; None for any other stream."""
    kind, _, rest = stream.partition("/")
    parts = rest.split("/", 2)
    if kind != "source" or len(parts) != 3:
        return None
    return SourceStream(*parts)


def parse_outbound_stream(stream: str) -> OutboundStream | None:
    """(target, object, canonical id) of an `outbound/...` stream; None for any other."""
    kind, _, rest = stream.partition("/")
    parts = rest.split("/", 2)
    if kind != "outbound" or len(parts) != 3:
        return None
    return OutboundStream(*parts)
