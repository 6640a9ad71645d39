"""The outbound projection: one row per (target, object, canonical id).

It holds the latest planned delta (pending → retrying → applied | failed; a failed one whose
`write` exception is resolved or ignored, by an operator or by the planner, becomes `resolved` or
`ignored`: settled, not counted as failed, and not sent again unless the desired state changes),
the attempts made, and what we last applied (`applied_desired`, `applied_key`): the planner's
"known" state when the target's own captured state is not available.

Events it reacts to: DeltaPlanned (a new pending write), WriteAttempted (its outcome: an applied
write links the target record, or drops the link when it deleted it; a refused one opens a
`write` exception), ExceptionAction on a `write` exception (resolve / ignore settle the failed
write, retry makes it pending again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from hub.store.base import Cursor, StoredEvent
from hub.store.streams import IN_FLIGHT, EventType, ExceptionKind, OutboundStatus, outbound_stream
from hub.values import micros
from projections.exception_kinds import outbound_key, refused_write
from projections.exceptions import Exceptions
from projections.links import TARGET, Links
from projections.tables import Context, Handler, Table

__all__ = [
    "OUTBOUND",
    "STATUSES",
    "TABLES",
    "OutboundState",
    "Pending",
    "Write",
    "applied_between",
    "canonical_ids_at",
    "counts",
    "in_flight",
    "in_flight_row",
    "pending_after",
    "settled_after",
    "settled_since",
    "state_of",
    "writes_about",
]

OUTBOUND = Table(
    "outbound",
    (
        "target TEXT NOT NULL",
        "object TEXT NOT NULL",
        "canonical_id TEXT NOT NULL",
        "status TEXT NOT NULL",  # pending | retrying | applied | failed | resolved | ignored
        "op TEXT NOT NULL",
        "idempotency_key TEXT NOT NULL",
        "target_key TEXT",
        "fields TEXT NOT NULL",
        "desired TEXT NOT NULL",
        "mapping_version INTEGER NOT NULL",
        "attempts INTEGER NOT NULL",
        "last_error TEXT",
        "retry_after REAL",
        "last_attempt_at INTEGER",
        "applied_desired TEXT",
        "applied_key TEXT",
        "planned_position INTEGER NOT NULL",
        "position INTEGER NOT NULL",
    ),
    pk=("target", "object", "canonical_id"),
    indexes=(
        ("target", "status"),
        ("target", "object", "target_key"),
        ("status", "last_attempt_at"),
    ),
)

TABLES = (OUTBOUND,)
_LIVE = OUTBOUND.physical()
STATUSES = tuple(s.value for s in OutboundStatus)
"""Every status of an outbound row, in the order `status` shows them."""


# -- read queries ------------------------------------------------------------------------------


class Pending(NamedTuple):
    """A write not settled yet (pending or retrying), as the executor sends it."""

    target: str
    object: str
    canonical_id: str
    status: str
    op: str
    idempotency_key: str
    target_key: str | None
    fields: str
    attempts: int
    retry_after: float | None
    last_attempt_at: int | None
    applied_key: str | None
    desired: str


class OutboundState(NamedTuple):
    """The latest write planned for a target record, and what was last applied to it."""

    status: str
    idempotency_key: str
    applied_desired: str | None
    applied_key: str | None
    target_key: str | None
    desired: str
    op: str
    position: int


class Write(NamedTuple):
    """A target record's latest write, as `exceptions show` lists the flags of a record."""

    target: str
    object: str
    canonical_id: str
    status: str
    idempotency_key: str
    target_key: str | None
    applied_key: str | None
    desired: str
    last_error: str | None


def writes_about(
    c: Cursor, canonical_id: str | None, system: str | None, obj: str | None, key: str | None
) -> list[Write]:
    """The rows of `canonical_id`'s target records, and of the writes to record system/obj/key
    (whatever entity they are for), by target, object and canonical id."""
    c.execute(
        f"SELECT {', '.join(Write._fields)} FROM {_LIVE}"
        " WHERE canonical_id=? OR (target=? AND object=? AND target_key=?)"
        " ORDER BY target, object, canonical_id",
        (canonical_id, system, obj, key),
    )
    return [Write(*r) for r in c.fetchall()]


def in_flight(c: Cursor, targets: Sequence[str]) -> list[Pending]:
    """The pending and retrying writes to `targets`, in the order they were planned."""
    if not targets:
        return []
    c.execute(
        f"SELECT {', '.join(Pending._fields)} FROM {_LIVE}"
        f" WHERE status IN (?, ?) AND target IN ({','.join('?' * len(targets))})"
        " ORDER BY planned_position",
        (*IN_FLIGHT, *targets),
    )
    return [Pending(*r) for r in c.fetchall()]


def in_flight_row(c: Cursor, target: str, obj: str, canonical_id: str) -> Pending | None:
    """The write to target record target/obj of `canonical_id`, if it is pending or retrying."""
    c.execute(
        f"SELECT {', '.join(Pending._fields)} FROM {_LIVE}"
        " WHERE target=? AND object=? AND canonical_id=? AND status IN (?, ?)",
        (target, obj, canonical_id, *IN_FLIGHT),
    )
    r = c.fetchone()
    return None if r is None else Pending(*r)


def pending_after(
    c: Cursor, targets: Sequence[str], position: int, upto: int
) -> list[tuple[str, str, str, str, int]]:
    """(target, object, canonical id, idempotency key, position) of the writes to `targets`
    that became pending after `position` (planned, or retried by an operator), up to `upto`,
    in that order."""
    if not targets:
        return []
    c.execute(
        f"SELECT target, object, canonical_id, idempotency_key, position FROM {_LIVE}"
        f" WHERE status=? AND target IN ({','.join('?' * len(targets))})"
        " AND position>? AND position<=? ORDER BY position, target, object, canonical_id",
        (OutboundStatus.PENDING, *targets, position, upto),
    )
    return [(r[0], r[1], r[2], r[3], int(r[4])) for r in c.fetchall()]


def settled_after(
    c: Cursor, position: int, upto: int
) -> list[tuple[str, str, str, str, str, str | None, int]]:
    """(target, object, canonical id, status, idempotency key, target key, position) of the
    writes whose outcome settled after `position` (applied, failed, resolved, ignored), up to
    `upto`, in that order: each target record's latest."""
    c.execute(
        f"SELECT target, object, canonical_id, status, idempotency_key,"
        f" coalesce(applied_key, target_key), position FROM {_LIVE}"
        " WHERE status NOT IN (?, ?) AND position>? AND position<=?"
        " ORDER BY position, target, object, canonical_id",
        (*IN_FLIGHT, position, upto),
    )
    return [(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in c.fetchall()]


def has_in_flight(c: Cursor, target: str, canonical_id: str) -> bool:
    """Whether a write of `canonical_id` to `target` (any object) is pending or retrying."""
    c.execute(
        f"SELECT 1 FROM {_LIVE} WHERE target=? AND canonical_id=? AND status IN (?, ?) LIMIT 1",
        (target, canonical_id, *IN_FLIGHT),
    )
    return c.fetchone() is not None


def state_of(c: Cursor, target: str, obj: str, canonical_id: str) -> OutboundState | None:
    """The row of target record target/obj for `canonical_id`, or None."""
    c.execute(
        f"SELECT {', '.join(OutboundState._fields)} FROM {_LIVE}"
        " WHERE target=? AND object=? AND canonical_id=?",
        (target, obj, canonical_id),
    )
    r = c.fetchone()
    return None if r is None else OutboundState(*r)


def settled_since(c: Cursor, since: int) -> list[tuple[str, int]]:
    """(canonical id, position) of the writes applied or failed after `since`, in order."""
    c.execute(
        f"SELECT canonical_id, position FROM {_LIVE} WHERE position > ?"
        " AND status IN (?, ?) ORDER BY position, canonical_id",
        (since, OutboundStatus.APPLIED, OutboundStatus.FAILED),
    )
    return [(r[0], r[1]) for r in c.fetchall()]


def applied_between(
    c: Cursor, since_us: int, until_us: int, upto: int | None, limit: int
) -> list[tuple[str, str, str, int, int]]:
    """(target, object, canonical id, planned position, applied at in µs) of the target
    records whose latest write was applied between `since_us` and `until_us` (the latest
    `limit` of them), as the table was after position `upto` (None: now; rows changed since
    are left out)."""
    c.execute(
        f"SELECT target, object, canonical_id, planned_position, last_attempt_at FROM {_LIVE}"
        " WHERE status = ? AND last_attempt_at BETWEEN ? AND ? AND position <= ?"
        " ORDER BY last_attempt_at DESC LIMIT ?",
        (
            OutboundStatus.APPLIED,
            since_us,
            until_us,
            upto if upto is not None else 2**63 - 1,
            limit,
        ),
    )
    return [(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in c.fetchall()]


def canonical_ids_at(c: Cursor, target: str, obj: str, target_key: str) -> list[str]:
    """The canonical ids whose writes go to record target/obj/target_key, in order."""
    c.execute(
        f"SELECT canonical_id FROM {_LIVE} WHERE target=? AND object=?"
        " AND target_key=? ORDER BY canonical_id",
        (target, obj, target_key),
    )
    return [r[0] for r in c.fetchall()]


def counts(c: Cursor) -> dict[str, dict[str, int]]:
    """Per target (in order): how many rows have each status (every status, 0 when none)."""
    c.execute(
        f"SELECT target, status, count(*) FROM {_LIVE} GROUP BY target, status"
        " ORDER BY target, status"
    )
    out: dict[str, dict[str, int]] = {}
    for target, status, n in c.fetchall():
        out.setdefault(target, dict.fromkeys(STATUSES, 0))[status] = n
    return out


# -- the projection in a fold ------------------------------------------------------------------


class Outbound:
    """Keeps the outbound table of one fold; links applied target records (`links`) and opens
    and resolves `write` exceptions (`exceptions`)."""

    def __init__(self, ctx: Context, links: Links, exceptions: Exceptions) -> None:
        self.ctx = ctx
        self.rows = ctx.cache(OUTBOUND)
        self.links = links
        self.exceptions = exceptions

    def handlers(self) -> dict[str, Handler]:
        return {
            EventType.DELTA_PLANNED: self._on_planned,
            EventType.WRITE_ATTEMPTED: self._on_attempt,
            EventType.EXCEPTION_ACTION: self._on_action,
        }

    def flush(self, c: Cursor) -> None:
        self.rows.flush(c)

    def discard(self) -> None:
        self.rows.discard()

    def _on_planned(self, e: StoredEvent, d: dict[str, Any]) -> None:
        assert self.ctx.c is not None
        key = (d["target"], d["object"], d["canonical_id"])
        old = self.rows.get(self.ctx.c, key)
        self.rows.put(
            key,
            {
                "target": d["target"],
                "object": d["object"],
                "canonical_id": d["canonical_id"],
                "status": OutboundStatus.PENDING,
                "op": d["op"],
                "idempotency_key": d["idempotency_key"],
                "target_key": d["target_key"],
                "fields": d["fields"],
                "desired": d["desired"],
                "mapping_version": d["mapping_version"],
                "attempts": 0,
                "last_error": None,
                "retry_after": None,
                "last_attempt_at": None,
                "applied_desired": old["applied_desired"] if old else None,
                "applied_key": old["applied_key"] if old else None,
                "planned_position": e.position,
                "position": e.position,
            },
        )

    def _on_attempt(self, e: StoredEvent, d: dict[str, Any]) -> None:
        assert self.ctx.c is not None
        key = (d["target"], d["object"], d["canonical_id"])
        row = self.rows.get(self.ctx.c, key)
        if row is None or row["idempotency_key"] != d["idempotency_key"]:
            return  # an attempt of a superseded plan
        status = d["status"]
        base = {
            **row,
            "attempts": d["attempt"],
            "last_attempt_at": micros(d["at"]),
            "position": e.position,
        }
        if status == "applied":
            applied_key = d["target_key"] or row["target_key"]
            deleted = row["op"] == "delete"
            self.rows.put(
                key,
                {
                    **base,
                    "status": OutboundStatus.APPLIED,
                    "last_error": None,
                    "applied_desired": row["desired"] if not deleted else None,
                    "applied_key": applied_key if not deleted else None,
                    "target_key": applied_key,
                },
            )
            if applied_key and not deleted:
                self.links.link(d["target"], d["object"], applied_key, d["canonical_id"], TARGET)
            elif applied_key:  # the target record is gone: so is its identity link
                self.links.unlink(d["target"], d["object"], applied_key, d["canonical_id"])
            self.exceptions.resolve_open(
                outbound_stream(*key), (ExceptionKind.WRITE,), "auto: a later write was applied"
            )
        elif status == "retryable":
            self.rows.put(
                key,
                {
                    **base,
                    "status": OutboundStatus.RETRYING,
                    "last_error": d["reason"],
                    "retry_after": d["retry_after"],
                },
            )
        else:
            self.rows.put(key, {**base, "status": OutboundStatus.FAILED, "last_error": d["reason"]})
            self.exceptions.open(
                *refused_write(
                    d,
                    op=row["op"],
                    target_key=row["target_key"],
                    version=row["mapping_version"],
                    fields=row["fields"],
                    ikey=row["idempotency_key"],
                )
            )

    def _on_action(self, e: StoredEvent, d: dict[str, Any]) -> None:
        """An action on a `write` exception: resolve / ignore settle its failed write (no
        longer `failed`); retry makes it pending again, from its first attempt."""
        c = self.ctx.c
        assert c is not None
        row = self.exceptions.get(d["exception_id"])
        if row is None or row["kind"] != ExceptionKind.WRITE:
            return
        key = outbound_key(row["details"])
        ob = self.rows.get(c, key)
        if ob is None or ob["status"] != OutboundStatus.FAILED:
            return
        position = self.ctx.position
        action = d["action"]
        if action in ("resolve", "ignore"):
            settled = OutboundStatus.RESOLVED if action == "resolve" else OutboundStatus.IGNORED
            self.rows.put(key, {**ob, "status": settled, "position": position})
        else:
            self.rows.put(
                key, {**ob, "status": OutboundStatus.PENDING, "attempts": 0, "position": position}
            )
