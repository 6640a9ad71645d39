"""Read-side queries behind the CLI's read commands: plain dicts, ready for JSON or tables.

A thin layer over the projections' read API (projections.audit, links, exceptions, outbound):
the SQL on projection tables lives in those modules; this one shapes what they return.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import difflib
import json
import time
from typing import Any

from hub.errors import SyncHubError
from hub.schemas import canonical_entities
from hub.store.base import EventStore, StoredEvent
from hub.store.leases import Leases
from hub.store.streams import (
    EventType,
    OutboundStatus,
    connector_errors_stream,
    connector_stream,
    outbound_stream,
)
from projections import PROJECTIONS, Projector, audit, links, outbound
from projections import exceptions as exc
from projections.mappings import active_deployment


def jsonable(value: Any) -> Any:
    """Decoded Avro values → JSON-friendly values (bytes as hex, times as ISO 8601)."""
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 32 else base64.b64encode(value).decode()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")  # an amount as written: 100, not 1E+2
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def canonical_id(entity: str, natural_id: str, store: EventStore | None = None) -> str:
    """`Entity/id`, with the entity name matched case-insensitively to a canonical entity (of
    those deployed in `store`, the firm's own included)."""
    return f"{entity_name(entity, store)}/{natural_id}"


def deployed_entities(store: EventStore) -> list[str]:
    """The canonical entities in force in `store`: synchub's and the firm's own deployed with
    the active mapping."""
    with store.db.transaction(commit=False) as c:
        return active_deployment(c)[1].entities()


def entity_name(entity: str, store: EventStore | None = None) -> str:
    """The canonical entity `entity` names, matched case-insensitively (among those deployed
    in `store`, else the built-in ones); SyncHubError (with the closest name) when there is
    none."""
    known = deployed_entities(store) if store is not None else canonical_entities()
    names = {e.lower(): e for e in known}
    name = names.get(entity.lower())
    if name is None:
        close = difflib.get_close_matches(entity.lower(), list(names), n=1)
        hint = f" (did you mean {names[close[0]]!r}?)" if close else ""
        raise SyncHubError(
            f"unknown entity {entity!r}{hint}; canonical entities: {', '.join(names.values())}"
        )
    return name


def event_dict(store: EventStore, e: StoredEvent) -> dict[str, Any]:
    """One event with its decoded payload."""
    schema = store.codec.schema_of(e.payload)
    recorded = store.time_of(e.position)
    return {
        "position": e.position,
        "stream": e.stream,
        "version": e.version,
        "type": e.type,
        "schema": schema.name,
        "fingerprint": schema.fingerprint_hex,
        "recorded_at": recorded.isoformat() if recorded else None,
        "payload": jsonable(store.decode(e)),
    }


def state(
    store: EventStore,
    cid: str,
    *,
    position: int | None = None,
    as_of: dt.datetime | None = None,
) -> dict[str, Any]:
    """Current or past state of one canonical entity (from the audit trail, no replay).

    `links` are the entity's identity links; for a past state, those made at or before that
    position (a link is kept as last made: one re-pointed later shows from then on)."""
    if as_of is not None:
        position = store.position_at(as_of)
    with store.db.transaction(commit=False) as c:
        fields = audit.state_at(c, cid, position)
        linked = [link._asdict() for link in links.links_of(c, cid, position)]
    return {
        "canonical_id": cid,
        "position": position if position is not None else store.head(),
        "as_of": as_of.isoformat() if as_of else None,
        "exists": fields is not None,
        "fields": fields or {},
        "links": linked,
    }


def states(
    store: EventStore,
    entity: str,
    *,
    where: dict[str, str] | None = None,
    position: int | None = None,
    as_of: dt.datetime | None = None,
) -> dict[str, Any]:
    """Every `entity` now or as of a time or position (from the audit trail, no replay), by
    canonical id; `where` keeps those whose field equals the given text (compared with the
    field's value as `state` prints it: text as is, other values as JSON, e.g. `true`, `60`)."""
    entity = entity_name(entity, store)
    if as_of is not None:
        position = store.position_at(as_of)
    wanted = where or {}
    rows = []
    with store.db.transaction(commit=False) as c:
        for cid, fields in audit.states_at(c, entity, position):
            if all(_as_text(fields.get(f)) == v for f, v in wanted.items()):
                rows.append({"canonical_id": cid, "fields": fields})
    return {
        "entity": entity,
        "position": position if position is not None else store.head(),
        "as_of": as_of.isoformat() if as_of else None,
        "where": wanted,
        "count": len(rows),
        "entities": rows,
    }


def _as_text(value: Any) -> str:
    """A field value as `--where` compares it: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def history(store: EventStore, cid: str) -> list[dict[str, Any]]:
    with store.db.transaction(commit=False) as c:
        rows = audit.history(c, cid)
    for r in rows:
        for k in ("source_time", "captured_at"):
            r[k] = (
                None if r[k] is None else dt.datetime.fromtimestamp(r[k] / 1e6, dt.UTC).isoformat()
            )
    return rows


def exceptions(
    store: EventStore, status: str = "open", kind: str | None = None
) -> list[dict[str, Any]]:
    """Exceptions of `status` ('open': open or retrying; 'all': any) and `kind` (None: any),
    oldest first, `details` decoded."""
    with store.db.transaction(commit=False) as c:
        return [_exception(row) for row in exc.listed(c, status, kind)]


def exception(store: EventStore, xid: str) -> dict[str, Any]:
    """One exception; `flags` lists the flags (a mapping rule's `feedback` tag) its record
    carries at its source, with what the target said when it set one (e.g. that it had to
    shorten the description to fit the tag), or None if none."""
    with store.db.transaction(commit=False) as c:
        found = exc.by_id(c, xid)
        if found is None:
            raise SyncHubError(
                f"no exception {xid!r}: `synchub exceptions list --status all` shows them all"
            )
        row = _exception(found)
        writes = outbound.writes_about(
            c, row["canonical_id"], row["system"], row["object"], row["key"]
        )
    flags = [_flag(store, w) for w in writes if _is_flag(w.desired)]
    row["flags"] = flags or None
    return row


def _is_flag(desired: str) -> bool:
    """Whether an outbound row's desired state is a feedback flag (`{tag, flagged}`)."""
    value = json.loads(desired)
    return isinstance(value, dict) and set(value) == {"tag", "flagged"}


def _flag(store: EventStore, w: outbound.Write) -> dict[str, Any]:
    """One flag at the source: where, which tag, set or being removed, how its write went. The
    note of an applied write is in its WriteAttempted event (the outbound row keeps errors)."""
    desired = json.loads(w.desired)
    flag = {
        "target": f"{w.target}/{w.object}",
        "key": w.target_key or w.applied_key,
        "tag": desired["tag"],
        "flagged": desired["flagged"],
        "status": w.status,
        "note": w.last_error,
    }
    if w.status == OutboundStatus.APPLIED:
        last = store.last(outbound_stream(w.target, w.object, w.canonical_id))
        attempt = (
            store.decode(last)
            if last is not None and last.type == EventType.WRITE_ATTEMPTED
            else None
        )
        if isinstance(attempt, dict) and attempt.get("idempotency_key") == w.idempotency_key:
            flag["note"] = attempt.get("reason")
    return flag


def _exception(row: dict[str, Any]) -> dict[str, Any]:
    row["details"] = json.loads(row["details"]) if row.get("details") else None
    return row


OUTBOUND_STATUSES = outbound.STATUSES
"""Statuses of an outbound row (see projections/outbound.py), in the order status shows them."""


def status(store: EventStore, projector: Projector, connectors: list[str]) -> dict[str, Any]:
    """Per connector: checkpoint, lag, last error; per projection: position vs head; outbound
    counts; open exceptions; which hub process works what (leases)."""
    head = store.head()
    now = time.time()
    out: dict[str, Any] = {
        "store": {"location": store.location, "head": head},
        "connectors": {},
        "projections": {},
        "leases": leases(store),
    }
    for name in connectors:
        last = store.last(connector_stream(name))
        info: dict[str, Any] = {
            "checkpoint": None,
            "last_batch_at": None,
            "lag_seconds": None,
            "last_error": None,
            "last_error_at": None,
        }
        if last is not None:
            cp = store.decode(last)
            assert isinstance(cp, dict)
            info["checkpoint"] = json.loads(cp["checkpoint"])
            info["last_batch_at"] = cp["at"].isoformat()
            info["lag_seconds"] = round(now - cp["at"].timestamp(), 1)
        err = store.last(connector_errors_stream(name))
        if err is not None:
            e = store.decode(err)
            assert isinstance(e, dict)
            if last is None or err.position > last.position:
                info["last_error"] = e["error"]
                info["last_error_at"] = e["at"].isoformat()
        out["connectors"][name] = info
    positions = projector.positions()
    for name in PROJECTIONS:
        out["projections"][name] = {"position": positions[name], "behind": head - positions[name]}
    with store.db.transaction(commit=False) as c:
        out["outbound"] = outbound.counts(c)
        out["exceptions"] = exc.open_by_kind(c)
    out["open_exceptions"] = sum(out["exceptions"].values())
    return out


def leases(store: EventStore) -> list[dict[str, Any]]:
    """Each piece of work a hub process holds or held: its holder (host:pid:id), since when,
    until when, whether it expired (the work then goes to the next process that asks)."""
    return [
        {
            "work": lease.name,
            "holder": lease.holder,
            "since": _iso(lease.acquired_at),
            "until": _iso(lease.expires_at),
            "expired": lease.expired,
            "expires_in_s": round((lease.expires_at - lease.now) / 1_000_000, 1),
        }
        for lease in Leases(store.db, holder="").all()
    ]


def _iso(micros: int) -> str:
    return dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC).isoformat(timespec="seconds")
