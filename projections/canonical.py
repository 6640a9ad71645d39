"""The canonical projection: current state of canonical entities under the active mapping.

Tables: `canonical` (one row per entity: fields as JSON, deleted flag, last change position),
`source_records` (the latest record of every source stream: re-mapped when a new mapping version
is deployed, and the planner's view of what a target holds), `mappings` (deployed versions),
`waiting` (records whose mapping needs a link that does not exist yet; captured later, the link
triggers their re-mapping, so the order in which systems are read does not matter).
Ownership: a source only sets fields its system owns (per the mapping's `entities` rules).
Only the system of record deletes or restores an entity; a restore re-maps the entity's other
source records, so the fields their systems own come back as those records are now.
"""

from __future__ import annotations

from projections.tables import Table

CANONICAL = Table(
    "canonical",
    (
        "canonical_id TEXT NOT NULL",
        "entity TEXT NOT NULL",
        "natural_id TEXT NOT NULL",
        "fields TEXT NOT NULL",
        "deleted INTEGER NOT NULL",
        "changes INTEGER NOT NULL",
        "mapping_version INTEGER NOT NULL",
        "position INTEGER NOT NULL",
    ),
    pk=("canonical_id",),
    indexes=(("position",), ("entity", "natural_id")),
)

SOURCE_RECORDS = Table(
    "source_records",
    (
        "stream TEXT NOT NULL",
        "system TEXT NOT NULL",
        "object TEXT NOT NULL",
        "key TEXT NOT NULL",
        "record TEXT",
        "deleted INTEGER NOT NULL",
        "position INTEGER NOT NULL",
        "source_time INTEGER",
        "captured_at INTEGER",
    ),
    pk=("stream",),
    indexes=(("system", "object", "key"),),
)

MAPPINGS = Table(
    "mappings",
    (
        "version INTEGER NOT NULL",
        "name TEXT NOT NULL",
        "spec TEXT NOT NULL",
        "digest TEXT NOT NULL",
        "position INTEGER NOT NULL",
    ),
    pk=("version",),
)

WAITING = Table(
    "waiting",
    (
        "system TEXT NOT NULL",
        "object TEXT NOT NULL",
        "key TEXT NOT NULL",
        "stream TEXT NOT NULL",
    ),
    pk=("system", "object", "key", "stream"),
)
"""Source records whose mapping failed on a missing link: re-mapped when the link appears."""

TABLES = (CANONICAL, SOURCE_RECORDS, MAPPINGS, WAITING)
