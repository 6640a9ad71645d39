"""Read-side queries behind the CLI's read commands: plain dicts, ready for JSON or tables."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import time
from typing import Any

from hub.errors import SyncHubError
from hub.schemas import canonical_entities
from hub.store.base import StoredEvent
from hub.store.sqlite import SQLiteEventStore
from hub.store.streams import EventType, OutboundStatus, outbound_stream
from projections import PROJECTIONS, Projector
from projections.audit import history as audit_history
from projections.audit import state_at


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


def canonical_id(entity: str, natural_id: str) -> str:
    """`Entity/id`, with the entity name matched case-insensitively to a canonical entity."""
    names = {e.lower(): e for e in canonical_entities()}
    name = names.get(entity.lower())
    if name is None:
        raise SyncHubError(
            f"unknown entity {entity!r}; canonical entities: {', '.join(names.values())}"
        )
    return f"{name}/{natural_id}"


def event_dict(store: SQLiteEventStore, e: StoredEvent) -> dict[str, Any]:
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
    store: SQLiteEventStore,
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
        fields = state_at(c, "p_audit", cid, position)
        c.execute(
            "SELECT system, object, key, role FROM p_links WHERE canonical_id=? AND position <= ?"
            " ORDER BY system, object, key",
            (cid, position if position is not None else 2**63 - 1),
        )
        links = [dict(r) for r in c.fetchall()]
    return {
        "canonical_id": cid,
        "position": position if position is not None else store.head(),
        "as_of": as_of.isoformat() if as_of else None,
        "exists": fields is not None,
        "fields": fields or {},
        "links": links,
    }


def history(store: SQLiteEventStore, cid: str) -> list[dict[str, Any]]:
    with store.db.transaction(commit=False) as c:
        rows = audit_history(c, "p_audit", cid)
    for r in rows:
        for k in ("source_time", "captured_at"):
            r[k] = (
                None if r[k] is None else dt.datetime.fromtimestamp(r[k] / 1e6, dt.UTC).isoformat()
            )
    return rows


def exceptions(
    store: SQLiteEventStore, status: str = "open", kind: str | None = None
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM p_exceptions"
    where, params = [], []
    if status == "open":
        where.append("status IN ('open','retrying')")
    elif status != "all":
        where.append("status=?")
        params.append(status)
    if kind:
        where.append("kind=?")
        params.append(kind)
    if where:
        sql += " WHERE " + " AND ".join(where)
    with store.db.transaction(commit=False) as c:
        c.execute(sql + " ORDER BY first_position, id", params)
        return [_exception(dict(r)) for r in c.fetchall()]


def exception(store: SQLiteEventStore, xid: str) -> dict[str, Any]:
    """One exception; `flags` lists the flags (a mapping rule's `feedback` tag) its record
    carries at its source, with what the target said when it set one (e.g. that it had to
    shorten the description to fit the tag), or None if none."""
    with store.db.transaction(commit=False) as c:
        c.execute("SELECT * FROM p_exceptions WHERE id=?", (xid,))
        r = c.fetchone()
        if r is None:
            raise SyncHubError(
                f"no exception {xid!r}: `synchub exceptions list --status all` shows them all"
            )
        row = _exception(dict(r))
        c.execute(
            "SELECT target, object, canonical_id, status, idempotency_key, target_key,"
            " applied_key, desired, last_error FROM p_outbound"
            " WHERE canonical_id=? OR (target=? AND object=? AND target_key=?)"
            " ORDER BY target, object, canonical_id",
            (row["canonical_id"], row["system"], row["object"], row["key"]),
        )
        outbound = [dict(o) for o in c.fetchall()]
    flags = [_flag(store, o) for o in outbound if _is_flag(o["desired"])]
    row["flags"] = flags or None
    return row


def _is_flag(desired: str) -> bool:
    """Whether an outbound row's desired state is a feedback flag (`{tag, flagged}`)."""
    value = json.loads(desired)
    return isinstance(value, dict) and set(value) == {"tag", "flagged"}


def _flag(store: SQLiteEventStore, o: dict[str, Any]) -> dict[str, Any]:
    """One flag at the source: where, which tag, set or being removed, how its write went. The
    note of an applied write is in its WriteAttempted event (the outbound row keeps errors)."""
    desired = json.loads(o["desired"])
    flag = {
        "target": f"{o['target']}/{o['object']}",
        "key": o["target_key"] or o["applied_key"],
        "tag": desired["tag"],
        "flagged": desired["flagged"],
        "status": o["status"],
        "note": o["last_error"],
    }
    if o["status"] == OutboundStatus.APPLIED:
        last = store.last(outbound_stream(o["target"], o["object"], o["canonical_id"]))
        attempt = (
            store.decode(last)
            if last is not None and last.type == EventType.WRITE_ATTEMPTED
            else None
        )
        if isinstance(attempt, dict) and attempt.get("idempotency_key") == o["idempotency_key"]:
            flag["note"] = attempt.get("reason")
    return flag


def _exception(row: dict[str, Any]) -> dict[str, Any]:
    row["details"] = json.loads(row["details"]) if row.get("details") else None
    return row


OUTBOUND_STATUSES = ("pending", "retrying", "applied", "failed", "resolved", "ignored")
"""Statuses of an outbound row (see projections/outbound.py), in the order status shows them."""


def status(store: SQLiteEventStore, projector: Projector, connectors: list[str]) -> dict[str, Any]:
    """Per connector: checkpoint, lag, last error; per projection: position vs head; outbound
    counts; open exceptions."""
    head = store.head()
    now = time.time()
    out: dict[str, Any] = {
        "store": {"path": store.path, "head": head},
        "connectors": {},
        "projections": {},
    }
    for name in connectors:
        last = store.last(f"connector/{name}")
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
        err = store.last(f"connector-errors/{name}")
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
        c.execute(
            "SELECT target, status, count(*) FROM p_outbound GROUP BY target, status ORDER BY target, status"
        )
        outbound: dict[str, dict[str, int]] = {}
        for target, st, n in c.fetchall():
            outbound.setdefault(target, dict.fromkeys(OUTBOUND_STATUSES, 0))[st] = n
        out["outbound"] = outbound
        c.execute(
            "SELECT kind, count(*) FROM p_exceptions WHERE status IN ('open','retrying') GROUP BY kind ORDER BY kind"
        )
        out["exceptions"] = {k: n for k, n in c.fetchall()}
    out["open_exceptions"] = sum(out["exceptions"].values())
    return out
