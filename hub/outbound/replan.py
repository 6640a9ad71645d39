"""Which other entities a pass must plan again, beyond those that changed.

A target rule can read other entities (`referenced_by`, `sum_of`, `values_of`, …) or wait for
another entity's target key (`target_key`), so a change of one entity can change what
another should hold. Each function answers (canonical id, position) pairs for the planner to
examine too; none of them reads anything but the lookup's indexes, so a pass stays linear.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.mapping import Mapping
from hub.mapping.checks import matches
from hub.mapping.runtime import Context
from hub.outbound.lookup import TableLookup
from projections import canonical_queries

__all__ = ["dependents", "referred", "siblings", "waiting_for"]

Again = list[tuple[str, int]]


def referred(mapping: Mapping, rows: Sequence[canonical_queries.Entity]) -> Again:
    """The entities a changed entity names, when target rules count what refers to them
    (`referenced_by`: an Account is written once one of its deals is won)."""
    followed = mapping.references()
    return [
        (str(r.fields[f]), r.position)
        for r in rows
        for f in followed.get(r.entity, ())
        if isinstance(r.fields.get(f), str)
    ]


def siblings(
    lookup: TableLookup, mapping: Mapping, rows: Sequence[canonical_queries.Entity]
) -> Again:
    """The others of the group a changed entity is in, when its checks add up entities of its
    own kind (a person's day)."""
    groups = mapping.siblings()
    out: Again = []
    for r in rows:
        for field_name, where in groups.get(r.entity, ()):
            value = r.fields.get(field_name)
            if not isinstance(value, str):
                continue
            ctx = Context(r.fields, r.natural_id, "", "", lookup)
            out += [
                (cid, r.position)
                for cid, fields in lookup.referencing(r.entity, field_name, value)
                if cid != r.canonical_id and matches(fields, where, ctx)
            ]
    return out


def dependents(
    lookup: TableLookup, mapping: Mapping, rows: Sequence[canonical_queries.Entity]
) -> Again:
    """Entities whose lookups start from a field of theirs (a task's `project_id | values_of
    Assignment project_id ...`): those whose field names what a changed entity names."""
    followers = mapping.dependents()
    out: Again = []
    for r in rows:
        for field_name, entity, source in followers.get(r.entity, ()):
            value = r.fields.get(field_name)
            if isinstance(value, str):
                out += [(cid, r.position) for cid, _ in lookup.referencing(entity, source, value)]
    return out


def waiting_for(lookup: TableLookup, mapping: Mapping, settled: Again) -> Again:
    """Entities whose rules take a target key from a field of theirs (`account_id |
    target_key erp`) that names an entity whose write just settled: the project waiting for
    its customer to be written."""
    keyed = mapping.key_dependents()
    out: Again = []
    for cid, position in settled:
        for entity, source in keyed:
            out += [(found, position) for found, _ in lookup.referencing(entity, source, cid)]
    return out
