"""What each kind of exception says: its id, subject, message, fix and details, from the event
or the failure that opens it (see exceptions.py). Ids are stable: the same problem of the same
record opens the same exception again (one more occurrence), not a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from hub.errors import MappingError
from hub.mapping import InboundRule
from hub.store.base import StoredEvent
from hub.store.streams import ExceptionKind, outbound_stream, source_stream
from hub.values import dumps, to_json

Opened = tuple[str, dict[str, Any]]
"""(exception id, the columns it is opened with: kind, subject, message, fix, …)."""


def exception_id(*parts: str | None) -> str:
    """Stable short id from the parts that identify the problem (not the occurrence)."""
    h = hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()
    return f"x{h[:11]}"


def plan_failure_text(
    target: str, obj: str, canonical_id: str, field: str, reason: str
) -> tuple[str, str]:
    """(message, fix) of the `plan` exception a PlanFailed event opens."""
    if field == "require":
        return reason, (
            "correct the entry at its source (its owner sees it flagged there when the "
            "rule has `feedback`); it is written as soon as every check holds"
        )
    return (
        f"cannot compute what to write to {target}/{obj} for {canonical_id}: {reason}",
        "fix the canonical data (at its system of record) or the outbound rule; "
        "the write is planned again when either changes",
    )


def outbound_key(details: str) -> tuple[str, str, str]:
    """(target, object, canonical id) of the write a `write` exception's details are about."""
    target, obj, cid = json.loads(details)["outbound"]
    return str(target), str(obj), str(cid)


def quarantined(e: StoredEvent, d: dict[str, Any]) -> Opened:
    """RecordQuarantined `e` (payload `d`): input ingest set aside."""
    subject = (
        source_stream(d["system"], d["object"], d["key"]) if d["key"] else f"{e.stream}@{e.version}"
    )
    xid = exception_id(
        ExceptionKind.QUARANTINE,
        subject,
        d["kind"],
        d["field"],
        d["reason"] if not d["key"] else "",
    )
    return xid, {
        "kind": ExceptionKind.QUARANTINE,
        "subject": subject,
        "system": d["system"],
        "object": d["object"],
        "key": d["key"],
        "field": d["field"],
        "rule": d["kind"],
        "message": d["reason"],
        "fix": d["fix"],
        "details": dumps(
            {
                "raw": d["raw"],
                "position": d["position"],
                "connector": d["connector"],
                "event": f"{e.stream}@{e.version}",
            }
        ),
    }


def unmappable(
    stream: str,
    rule: InboundRule,
    key: str,
    err: MappingError,
    version: int,
    record: Mapping[str, Any] | None,
    missing: tuple[str, str, str] | None,
) -> Opened:
    """Source record `stream` cannot be mapped by `rule` (of mapping `version`); `missing`: the
    record whose link it lacked (it is re-mapped once that is captured)."""
    return exception_id(ExceptionKind.MAPPING, stream), {
        "kind": ExceptionKind.MAPPING,
        "subject": stream,
        "entity": rule.entity,
        "system": rule.system,
        "object": rule.object,
        "key": key,
        "field": err.field,
        "rule": err.rule,
        "mapping_version": version,
        "message": f"{rule.system}/{rule.object} record {key!r} cannot be mapped to "
        f"{rule.entity}: {err}",
        "fix": (
            f"it is re-mapped by itself once {'/'.join(missing)} is captured; "
            "if that never happens, "
            if missing
            else ""
        )
        + f"correct the record in {rule.system}, or fix rule {err.field!r} in the "
        "mapping and deploy it (every record is re-mapped), or `synchub exceptions "
        "retry <id>`",
        "details": dumps({"value": to_json(err.value), "record": to_json(record)}),
    }


def plan_failed(d: dict[str, Any]) -> Opened:
    """PlanFailed `d`: what to write to a target record cannot be computed, or may not be."""
    subject = outbound_stream(d["target"], d["object"], d["canonical_id"])
    message, fix = plan_failure_text(
        d["target"], d["object"], d["canonical_id"], d["field"], d["reason"]
    )
    return exception_id(ExceptionKind.PLAN, subject), {
        "kind": ExceptionKind.PLAN,
        "subject": subject,
        "entity": d["canonical_id"].split("/", 1)[0],
        "canonical_id": d["canonical_id"],
        "system": d["target"],
        "object": d["object"],
        "field": d["field"],
        "rule": d["rule"],
        "mapping_version": d["mapping_version"],
        "message": message,
        "fix": fix,
        "details": None,
    }


def refused_write(
    d: dict[str, Any], op: str, target_key: str | None, version: int, fields: str, ikey: str
) -> Opened:
    """The target refused the write of WriteAttempted `d` (`op`, to `target_key`, planned
    under mapping `version`, `fields` its delta as stored, `ikey` its idempotency key)."""
    key = (d["target"], d["object"], d["canonical_id"])
    subject = outbound_stream(*key)
    return exception_id(ExceptionKind.WRITE, subject), {
        "kind": ExceptionKind.WRITE,
        "subject": subject,
        "entity": d["canonical_id"].split("/", 1)[0],
        "canonical_id": d["canonical_id"],
        "system": d["target"],
        "object": d["object"],
        "key": target_key,
        "rule": f"outbound {d['target']}/{d['object']}",
        "mapping_version": version,
        "message": f"{d['target']} refused to {op} {d['object']} for "
        f"{d['canonical_id']} (attempt {d['attempt']}): {d['reason']}",
        "fix": "fix the data or the target's rule that refused it, then "
        "`synchub exceptions retry <id>`; or `resolve` if fixed by hand",
        "details": dumps(
            {"outbound": list(key), "fields": json.loads(fields), "idempotency_key": ikey}
        ),
    }
