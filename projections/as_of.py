"""The mapping Lookup over the canonical state as it was after a past position (or now),
read from the audit trail and the links (no replay): what read-side rules (valuations,
indicators) evaluate their pipelines against, so a question asked "as of" a moment gets the
answer the hub would have given then, and a rebuild gives the same answers.

Read-only; each entity is read once per Lookup (cached), so one query over many records
costs one pass over the entities it looks at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub.store.base import Cursor
from projections import audit, canonical_queries, links

__all__ = ["AsOfLookup", "index_by"]

Entities = Iterable[tuple[str, dict[str, Any]]]


def index_by(entities: Entities, field: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """(canonical id, fields) pairs by the text value of their `field` (others left out): the
    index a Lookup's `referencing` answers from."""
    index: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for cid, fields in entities:
        value = fields.get(field)
        if isinstance(value, str):
            index.setdefault(value, []).append((cid, fields))
    return index


class AsOfLookup:
    """The mapping Lookup (hub.mapping) as of `position` (None: now), through cursor `c`.

    Identity links are as made at or before `position`; `canonical_id` (a source record's
    entity) reads the links as they are now: a record is linked once and keeps its entity."""

    def __init__(self, c: Cursor, position: int | None) -> None:
        self.c = c
        self.position = position
        self._fields: dict[str, dict[str, Any] | None] = {}
        self._by_field: dict[tuple[str, str], dict[str, list[tuple[str, dict[str, Any]]]]] = {}
        self._links: dict[str, list[links.Link]] = {}
        self._entities: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        cid = links.linked(self.c, system, object, key)
        if cid is None or cid.startswith(entity + "/"):
            return cid
        raise links.linked_elsewhere(entity, system, object, str(key), cid)

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        if canonical_id not in self._fields:
            self._fields[canonical_id] = audit.state_at(self.c, canonical_id, self.position)
        fields = self._fields[canonical_id]
        if fields is None:
            return None
        return fields if field == "*" else fields.get(field)

    def target_key(self, system: str, canonical_id: str) -> str | None:
        found = [link for link in self._links_of(canonical_id) if link.system == system]
        return found[0].key if found else None  # links_of orders by system, object, key

    def object_key(self, system: str, object: str, canonical_id: str) -> str | None:
        found = [
            link
            for link in self._links_of(canonical_id)
            if (link.system, link.object) == (system, object)
        ]
        return found[0].key if found else None

    def referencing(
        self, entity: str, field: str, canonical_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        index = self._by_field.get((entity, field))
        if index is None:
            index = index_by(self._states(entity), field)
            self._by_field[(entity, field)] = index
        return index.get(canonical_id, [])

    def prefetch(self, canonical_ids: Iterable[str]) -> None:
        """Read the fields of `canonical_ids` now, in a few queries (later reads are cached)."""
        wanted = [cid for cid in canonical_ids if cid not in self._fields]
        found = audit.states_of(self.c, wanted, self.position)
        for cid in wanted:
            self._fields[cid] = found.get(cid)

    def entities(self, entity: str) -> list[tuple[str, dict[str, Any]]]:
        """(canonical id, fields) of every `entity` that existed then, by canonical id; their
        fields are kept for later `canonical_field` reads."""
        rows = self._states(entity)
        for cid, fields in rows:
            self._fields.setdefault(cid, fields)
        return rows

    def _states(self, entity: str) -> list[tuple[str, dict[str, Any]]]:
        """(canonical id, fields) of every `entity` that existed then, by canonical id: its ids
        from the canonical table's index, their fields from the audit trail (not a scan of
        the whole trail for one entity's rows). Read once per Lookup."""
        rows = self._entities.get(entity)
        if rows is None:
            found = audit.states_of(self.c, canonical_queries.ids_of(self.c, entity), self.position)
            rows = self._entities[entity] = sorted(found.items())
        return rows

    def _links_of(self, canonical_id: str) -> list[links.Link]:
        if canonical_id not in self._links:
            self._links[canonical_id] = links.links_of(self.c, canonical_id, self.position)
        return self._links[canonical_id]
