"""The exceptions projection: everything that could not be captured, mapped or written.

Kinds: `quarantine` (input set aside by ingest: validation, schema, decode, oversize),
`mapping` (a rule failed on a record), `write` (a target rejected a write or retries ran out).
Status: open → retrying → open | resolved; or resolved / ignored by an operator. A later good
change of the same record resolves an open capture or mapping exception by itself.
"""

from __future__ import annotations

import hashlib

from projections.tables import Table

EXCEPTIONS = Table(
    "exceptions",
    (
        "id TEXT NOT NULL",
        "kind TEXT NOT NULL",
        "status TEXT NOT NULL",
        "subject TEXT NOT NULL",  # stream or target record the exception is about
        "entity TEXT",
        "canonical_id TEXT",
        "system TEXT",
        "object TEXT",
        "key TEXT",
        "field TEXT",
        "rule TEXT",
        "mapping_version INTEGER",
        "message TEXT NOT NULL",
        "fix TEXT NOT NULL",
        "details TEXT",  # JSON: raw input, delta, target answer
        "first_position INTEGER NOT NULL",
        "position INTEGER NOT NULL",
        "occurrences INTEGER NOT NULL",
        "resolution TEXT",
    ),
    pk=("id",),
    indexes=(("status", "kind"), ("subject",)),
    folded=(("subject",),),
)

TABLES = (EXCEPTIONS,)
OPEN = ("open", "retrying")
NOW_MAPS = "auto: the record now maps"
"""The resolution of a mapping exception whose record maps again (the planner looks for it)."""


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
