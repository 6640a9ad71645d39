"""The links projection: the identity map across systems.

One row per (system, object, key) naming the canonical entity that record is. Source records get
a link when they map to an entity; target records when a write to them is applied.
"""

from __future__ import annotations

from hub.mapping.runtime import StepFailure
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


def linked_elsewhere(
    entity: str, system: str, obj: str, key: str, canonical_id: str
) -> StepFailure:
    """What a `link ENTITY SYSTEM OBJECT` step fails with when the record is linked, but to an
    entity of another kind: a plain mapping error (capturing more changes nothing), not a
    missing link to wait for."""
    return StepFailure(
        f"{system}/{obj}/{key} is linked to {canonical_id}, not to a {entity}: link the object "
        f"whose records are {entity} entities, or fix the rule that maps {system}/{obj}"
    )
