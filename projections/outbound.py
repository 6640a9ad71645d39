"""The outbound projection: one row per (target, object, canonical id).

It holds the latest planned delta (pending → retrying → applied | failed; a failed one whose
`write` exception is resolved or ignored, by an operator or by the planner, becomes `resolved` or
`ignored`: settled, not counted as failed, and not sent again unless the desired state changes),
the attempts made, and what we last applied (`applied_desired`, `applied_key`): the planner's "known" state when
the target's own captured state is not available.
"""

from __future__ import annotations

from projections.tables import Table

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
    indexes=(("target", "status"), ("target", "object", "target_key")),
)

TABLES = (OUTBOUND,)
ACTIVE = ("pending", "retrying")
