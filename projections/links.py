"""The links projection: the identity map across systems.

One row per (system, object, key) naming the canonical entity that record is. Source records get
a link when they map to an entity; target records when a write to them is applied.
"""

from __future__ import annotations

from projections.tables import Table

LINKS = Table(
    "links",
    (
        "system TEXT NOT NULL",
        "object TEXT NOT NULL",
        "key TEXT NOT NULL",
        "canonical_id TEXT NOT NULL",
        "role TEXT NOT NULL",  # source | target
        "position INTEGER NOT NULL",
    ),
    pk=("system", "object", "key"),
    indexes=(("canonical_id", "system"),),
    folded=(("canonical_id", "system"),),
)

TABLES = (LINKS,)
