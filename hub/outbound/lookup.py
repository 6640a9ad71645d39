"""The mapping Lookup over the live projection tables, as the planner and its feedback flags
read them (read-only; through the projections' read API)."""

from __future__ import annotations

from typing import Any

from hub.store.base import Cursor
from projections import canonical_queries, links
from projections.as_of import index_by


class TableLookup:
    """The mapping Lookup (hub.mapping) over the live projection tables, through cursor `c`."""

    def __init__(self, c: Cursor) -> None:
        self.c = c
        self._by_field: dict[tuple[str, str], dict[Any, list[tuple[str, dict[str, Any]]]]] = {}
        """(entity, field) → field value → the live entities with it: the canonical state does
        not change while a pass plans, so each entity is read once per pass, not per record."""

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        cid = self.linked(system, object, key)
        if cid is None or cid.startswith(entity + "/"):
            return cid
        raise links.linked_elsewhere(entity, system, object, str(key), cid)

    def linked(self, system: str, object: str, key: str) -> str | None:
        """The canonical id record system/object/key is linked to, of whatever entity."""
        return links.linked(self.c, system, object, key)

    def linked_as(self, entity: str, system: str, object: str, key: str) -> str | None:
        """The `entity` record system/object/key is linked to; None if none (or another kind)."""
        cid = self.linked(system, object, key)
        return cid if cid is not None and cid.startswith(entity + "/") else None

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        fields = canonical_queries.fields_of(self.c, canonical_id)
        if fields is None:
            return None
        return fields if field == "*" else fields.get(field)

    def target_key(self, system: str, canonical_id: str) -> str | None:
        return links.first_key(self.c, canonical_id, system)

    def object_key(self, system: str, object: str, canonical_id: str) -> str | None:
        return links.object_key(self.c, canonical_id, system, object)

    def referencing(
        self, entity: str, field: str, canonical_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        index = self._by_field.get((entity, field))
        if index is None:
            index = index_by(canonical_queries.live_entities(self.c, entity), field)
            self._by_field[(entity, field)] = index
        return index.get(canonical_id, [])
