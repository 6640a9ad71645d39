"""The fold: the coordinator that applies pages of events to every projection, deterministically.

Same events in the same order ⇒ same rows (no wall clock, no randomness, ordered iteration).
Each projection module (canonical, links, audit, exceptions, outbound, backlog, with
source_records and mappings) owns its tables, the handlers of the event types it reacts to,
and its read queries.
The coordinator:

- dispatches each event to the handlers of every projection that reacts to its type, in a
  fixed order (exceptions, canonical, outbound);
- runs the re-map queue: records queued while an event is applied (they waited for a link the
  event put, an entity of theirs was restored, an operator retried them) are mapped again
  right after it, in queue order;
- deploys mappings (MappingDeployed, or a candidate for a preview): records the version, makes
  it active and re-maps every source record under it;
- owns the projections' row caches: loads, flushes and discards them together. The runner
  flushes them and records the tracked positions in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hub.canonical_schemas import BUILTIN, CanonicalSchemas
from hub.errors import MappingSpecError, SchemaError
from hub.mapping import Lookup, Mapping
from hub.store.base import Cursor, Dialect, StoredEvent
from hub.store.streams import EventType
from projections.audit import Audit
from projections.backlog import Backlog
from projections.canonical import Canonical
from projections.exceptions import Exceptions
from projections.links import Links
from projections.mappings import Mappings
from projections.outbound import Outbound
from projections.source_records import SourceRecords
from projections.tables import Context, Handler, PublishForm


class Fold:
    """Applies events to the projection tables of one generation (see runner.Projector)."""

    def __init__(
        self,
        physical: Callable[[str], str],
        decode: Callable[[bytes], Any],
        dialect: Dialect,
        *,
        fresh: bool = False,
        publish_form: PublishForm | None = None,
    ) -> None:
        """`physical`: logical table name → its name in this generation; `decode`: a payload's
        value with the envelope's own timestamps as integer microseconds (Codec.decode_raw
        with nested=False); `fresh`: the tables are new and empty (a rebuild), so rows this
        fold has not written do not exist (see RowCache `complete`); `publish_form`: makes
        each change's published form as the audit records it (tables.PublishForm)."""
        self.decode = decode
        self.ctx = ctx = Context(physical, dialect, fresh=fresh)
        ctx.publish_form = publish_form
        self._requeue: list[str] = []
        self.exceptions = Exceptions(ctx)
        self.records = SourceRecords(ctx, remap=self.remap)
        self.mappings = Mappings(ctx)
        self.backlog = Backlog(ctx)
        self.links = Links(ctx, on_link=self.records.release, on_target=self.backlog.targeted)
        self.audit = Audit(ctx)
        self.canonical = Canonical(
            ctx,
            self.records,
            self.links,
            self.audit,
            self.exceptions,
            remap=self.remap,
            changed=self.backlog.changed,
        )
        self.outbound = Outbound(ctx, self.links, self.exceptions)
        self.backlog.bind(posted=self._posted, approved=self._approved)
        self._parts = (
            self.canonical,
            self.records,
            self.links,
            self.exceptions,
            self.outbound,
            self.mappings,
            self.audit,
            self.backlog,
        )
        """Every projection's rows, in the order they are flushed."""
        dispatch: dict[str, list[Handler]] = {EventType.MAPPING_DEPLOYED: [self._on_mapping]}
        for projection in (self.exceptions, self.canonical, self.outbound):
            for event_type, handler in projection.handlers().items():
                dispatch.setdefault(str(event_type), []).append(handler)
        self._dispatch = {t: tuple(hs) for t, hs in dispatch.items()}

    @property
    def mapping(self) -> Mapping | None:
        """The active mapping version."""
        return self.canonical.mapping

    # -- lifecycle ------------------------------------------------------------------------------

    def load(self, c: Cursor) -> None:
        """Load the state kept beside the tables (on start and after a rollback): the active
        mapping, the subjects of open exceptions, the links records wait for."""
        self.canonical.activate(*self.mappings.active(c))
        self.backlog.activate(self.canonical.mapping)
        self.exceptions.load(c)
        self.records.load(c)

    def flush(self, c: Cursor) -> None:
        for part in self._parts:
            part.flush(c)

    def expect(self, events: int) -> None:
        """Size the row caches' filters of dropped keys for a replay of `events` events (each
        puts at most about one row per table)."""
        for cache in self.ctx.caches:
            cache.capacity = max(events, 1)

    def full(self) -> bool:
        """Whether a row cache's current generation is full: flush before more events, and
        no cache holds more than its `limit` (RowCache)."""
        return any(cache.full for cache in self.ctx.caches)

    def unwritten(self) -> int:
        """How many rows the fold holds that the next flush writes (a rebuild flushes once
        this passes its bound, not every page)."""
        return sum(len(cache.dirty) for cache in self.ctx.caches) + len(self.audit.rows)

    def discard(self) -> None:
        for part in self._parts:
            part.discard()

    def apply(self, c: Cursor, events: list[StoredEvent]) -> None:
        """Apply one page of events (the caller flushes and commits)."""
        ctx = self.ctx
        ctx.c = c
        dispatch = self._dispatch
        for e in events:
            handlers = dispatch.get(e.type)
            if handlers is not None:
                ctx.position = e.position
                ctx.seq = 0
                d = self.decode(e.payload)
                for handler in handlers:
                    handler(e, d)
                if self._requeue:
                    self._remap_queued()

    def bind(self, c: Cursor) -> Lookup:
        """The mapping Lookup over this fold's tables, through cursor `c` (read-only use)."""
        self.ctx.c = c
        return self.canonical

    def _posted(self, system: str, obj: str, cid: str) -> bool:
        assert self.ctx.c is not None
        row = self.outbound.rows.get(self.ctx.c, (system, obj, cid))
        return row is not None and row["applied_key"] is not None

    def _approved(self, cid: str) -> bool:
        assert self.ctx.c is not None
        row = self.canonical.entities.get(self.ctx.c, cid)
        return (
            row is not None
            and not row["deleted"]
            and json.loads(row["fields"]).get("approved") is True
        )

    # -- the re-map queue -----------------------------------------------------------------------

    def remap(self, stream: str) -> None:
        """Map source record `stream` again once the current event is applied."""
        if stream not in self._requeue:
            self._requeue.append(stream)

    def _remap_queued(self) -> None:
        """Re-map the queued records, in order (mapping one may queue more)."""
        while self._requeue:
            self.canonical.remap_record(self._requeue.pop(0))

    # -- mapping deployments --------------------------------------------------------------------

    def _on_mapping(self, e: StoredEvent, d: dict[str, Any]) -> None:
        assert self.ctx.c is not None
        try:
            mapping = Mapping.from_dict(json.loads(d["spec"]), version=int(d["version"]))
            schemas = CanonicalSchemas.from_json(d.get("canonical"))
        except (MappingSpecError, SchemaError):
            return  # deploy validates first; an invalid historic spec changes nothing
        self.deploy(
            self.ctx.c, mapping, e.position, spec=d["spec"], digest=d["digest"], schemas=schemas
        )

    def deploy(
        self,
        c: Cursor,
        mapping: Mapping,
        position: int,
        spec: str | None = None,
        digest: str | None = None,
        schemas: CanonicalSchemas = BUILTIN,
    ) -> None:
        """Make `mapping` (with the canonical `schemas`) active at `position` and re-map every
        source record under it."""
        self.ctx.c = c
        self.ctx.position = position
        self.mappings.deployed(mapping, spec, digest, schemas)
        self.canonical.activate(mapping, schemas)
        self.backlog.activate(mapping)
        # Re-project every source record under the new version, in a deterministic order.
        # What waits for a link is found again: the new rules may need other links, or none.
        self.flush(c)
        self.records.forget_waiting(c)
        self.canonical.remap_all()
        self._remap_queued()
