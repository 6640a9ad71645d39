"""Deployed mapping versions, part of the canonical projection.

One row per MappingDeployed event that the fold applied (a spec that does not load changes
nothing): the version, its name, its spec and digest, the position it was deployed at, and the
firm's own canonical schemas deployed with it (hub.canonical_schemas; '' for none). The
latest is the active mapping. The coordinator (fold.py) records deployments here and re-maps
every source record under the new version. Tracked with the canonical projection.
"""

from __future__ import annotations

import json

from hub.canonical_schemas import BUILTIN, CanonicalSchemas
from hub.mapping import Mapping
from hub.store.base import Cursor
from projections.tables import Context, Table

__all__ = [
    "MAPPINGS",
    "TABLES",
    "active_canonical",
    "active_deployment",
    "active_mapping",
    "mapping_at",
]

MAPPINGS = Table(
    "mappings",
    (
        "version INTEGER NOT NULL",
        "name TEXT NOT NULL",
        "spec TEXT NOT NULL",
        "digest TEXT NOT NULL",
        "position INTEGER NOT NULL",
        "canonical TEXT NOT NULL",
    ),
    pk=("version",),
)

TABLES = (MAPPINGS,)


def active_mapping(c: Cursor, *, table: str = MAPPINGS.physical()) -> Mapping | None:
    """The latest deployed mapping version (`table`: a generation of mappings)."""
    return active_deployment(c, table=table)[0]


def mapping_at(c: Cursor, position: int | None) -> Mapping | None:
    """The mapping version in force after `position` (None: now): the last one deployed at or
    before it."""
    if position is None:
        return active_mapping(c)
    c.execute(
        f"SELECT version, spec FROM {MAPPINGS.physical()} WHERE position<=?"
        " ORDER BY version DESC LIMIT 1",
        (position,),
    )
    r = c.fetchone()
    return None if r is None else Mapping.from_dict(json.loads(r[1]), version=int(r[0]))


def active_deployment(
    c: Cursor, *, table: str = MAPPINGS.physical()
) -> tuple[Mapping | None, CanonicalSchemas]:
    """The latest deployed mapping version and the canonical schemas deployed with it."""
    c.execute(f"SELECT version, spec, canonical FROM {table} ORDER BY version DESC LIMIT 1")
    r = c.fetchone()
    if r is None:
        return None, BUILTIN
    mapping = Mapping.from_dict(json.loads(r[1]), version=int(r[0]))
    return mapping, CanonicalSchemas.from_json(r[2])


def active_canonical(c: Cursor) -> str | None:
    """The JSON of the canonical schemas deployed with the latest mapping version (None: none
    deployed), without parsing the mapping: what a caller asking every pass compares."""
    c.execute(f"SELECT canonical FROM {MAPPINGS.physical()} ORDER BY version DESC LIMIT 1")
    r = c.fetchone()
    return None if r is None else str(r[0])


class Mappings:
    """Keeps the mappings table of one fold."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rows = ctx.cache(MAPPINGS)
        self.table = ctx.table(MAPPINGS)

    def active(self, c: Cursor) -> tuple[Mapping | None, CanonicalSchemas]:
        """See active_deployment, in this fold's tables."""
        return active_deployment(c, table=self.table)

    def deployed(
        self,
        mapping: Mapping,
        spec: str | None,
        digest: str | None,
        schemas: CanonicalSchemas = BUILTIN,
    ) -> None:
        """Record `mapping` as deployed at the current position with the canonical `schemas`
        (`spec`, `digest`: as the MappingDeployed event has them, else computed)."""
        self.rows.put(
            mapping.version,
            {
                "version": mapping.version,
                "name": mapping.name,
                "spec": spec if spec is not None else json.dumps(mapping.spec, sort_keys=True),
                "digest": digest if digest is not None else mapping.digest,
                "position": self.ctx.position,
                "canonical": schemas.to_json(),
            },
        )

    def flush(self, c: Cursor) -> None:
        self.rows.flush(c)

    def discard(self) -> None:
        self.rows.discard()
