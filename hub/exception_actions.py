"""Operators' actions on exceptions (`synchub exceptions retry|resolve|ignore`): recorded as
facts, and a quarantined record's retry captured again."""

from __future__ import annotations

import getpass
import json
from typing import Any

from hub.errors import SyncHubError
from hub.ingest import Ingestor, now_micros
from hub.schemas import hub_schema
from hub.store.base import EventStore
from hub.store.streams import EventType, ExceptionStatus, exception_stream, source_stream
from hub.types import Change
from projections import Projector
from projections import exceptions as exc

__all__ = ["record_exception_action", "reingest"]


def record_exception_action(
    store: EventStore,
    projector: Projector,
    exception_id: str,
    action: str,
    note: str = "",
    by: str | None = None,
) -> dict[str, Any]:
    """Append an operator's action (retry | resolve | ignore) on an open exception and return
    the exception with it applied. Needs the store only: `resolve` and `ignore` are complete
    once recorded (no connector, so no connector secret); a `retry` is carried out by
    `Hub.act_on_exception`."""
    projector.catch_up()
    with store.db.transaction(commit=False) as c:
        row = exc.by_id(c, exception_id)
    if row is None:
        raise SyncHubError(f"no exception {exception_id!r}: see `synchub exceptions list`")
    if row["status"] not in (ExceptionStatus.OPEN, ExceptionStatus.RETRYING):
        raise SyncHubError(f"exception {exception_id} is already {row['status']}")
    payload = {
        "exception_id": exception_id,
        "action": action,
        "note": note,
        "by": by or _user(),
        "at": now_micros(),
    }
    schema = hub_schema("exception_action")
    store.codec.add(schema)
    store.append_next(
        exception_stream(exception_id),
        EventType.EXCEPTION_ACTION,
        store.codec.encode(schema, payload),
    )
    projector.catch_up()
    with store.db.transaction(commit=False) as c:
        after = exc.by_id(c, exception_id)
    assert after is not None
    return after


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def reingest(store: EventStore, ingestors: dict[str, Ingestor], row: dict[str, Any]) -> None:
    """Capture a quarantined record again (an operator's `retry`), unless a newer fact of
    that record was captured since."""
    details = json.loads(row["details"] or "{}")
    connector = details.get("connector")
    ingestor = ingestors.get(connector or "")
    if ingestor is None:
        raise SyncHubError(f"connector {connector!r} of this exception is not configured any more")
    try:
        record = json.loads(details.get("raw", ""))
    except json.JSONDecodeError:
        raise SyncHubError(
            "the quarantined input is not a record (it could not be decoded); fix it in the "
            "source system — it is captured again when it changes — then `resolve` this exception"
        ) from None
    key = row["key"] or ""
    # The newest fact wins: don't resurrect an old record over a newer captured one.
    head = store.last(source_stream(ingestor.system, row["object"], key)) if key else None
    if head is not None and head.position > row["position"]:
        return
    ingestor.reingest(
        [Change(row["object"], key, "upsert", record, position=details.get("position", ""))]
    )
