"""The ingestor: Source batches → validated Avro facts, appended with the connector's checkpoint.

For each batch: validate every change against its object's schema, encode it in the object's
envelope (`hub.ingest.envelope`), drop it if it equals the stream's last state, and append the
remaining events **and** a CheckpointAdvanced event in one transaction. Input that cannot become
a fact is appended as a RecordQuarantined event in the same transaction
(`hub.ingest.quarantine`): the hub keeps going, nothing is half-applied. Hard deletes are found
by `reconcile` (`hub.ingest.reconcile`).

Streams: `source/<system>/<object>/<key>` per source record, `connector/<name>` for checkpoints,
`quarantine/<name>` for quarantined input (`hub.store.streams`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from hub.avro import Codec
from hub.config import IngestSettings
from hub.crashpoints import crashpoint
from hub.errors import IncompatibleSchemaError, ValidationError
from hub.ingest.envelope import (
    CREATE,
    DELETE,
    DELETED,
    UPDATE,
    Envelope,
    envelope_tail,
    now_micros,
)
from hub.ingest.heads import Heads
from hub.ingest.quarantine import Quarantine, QuarantineLog, check_sizes, storable
from hub.ingest.reconcile import reconcile
from hub.perf import quick_handoffs
from hub.registry import SourceSchemas
from hub.schemas import hub_schema, record_schema_of
from hub.spi import Source
from hub.store.base import EventStore, NewEvent
from hub.store.streams import (
    EventType,
    connector_stream,
    parse_source_stream,
    source_stream,
)
from hub.types import JSON, Change, ObjectSchema

__all__ = ["IngestReport", "Ingestor"]


@dataclass(slots=True)
class _Prepared:
    """A batch ready to append: its events (checkpoint last) and the stream heads after it."""

    events: list[NewEvent]
    heads: dict[str, tuple[int, bytes]]
    checkpoint_version: int
    changes: int
    appended: int
    skipped: int
    quarantined: int
    by_object: dict[str, list[int]]
    """Per object: [appended, skipped, quarantined]."""


@dataclass
class IngestReport:
    """What one ingest pass did: the counts are of what was stored, also when it then failed."""

    connector: str
    batches: int = 0
    appended: int = 0
    skipped: int = 0
    quarantined: int = 0
    deleted_by_reconciliation: int = 0
    by_object: dict[str, list[int]] = field(default_factory=dict)
    """Per object: [appended, skipped, quarantined] (the metrics' labels)."""
    reconcile_refused: str | None = None
    """Why reconciliation recorded no deletes (ReconcileRefused); the captured changes stay."""
    errors: list[str] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        """Count `other` (a later read of the same connector in the same pass) in this one."""
        self.batches += other.batches
        self.appended += other.appended
        self.skipped += other.skipped
        for obj, counts in other.by_object.items():
            mine = self.by_object.setdefault(obj, [0, 0, 0])
            for i, n in enumerate(counts):
                mine[i] += n
        self.quarantined += other.quarantined
        self.deleted_by_reconciliation += other.deleted_by_reconciliation
        self.reconcile_refused = other.reconcile_refused or self.reconcile_refused
        self.errors += other.errors


class Ingestor:
    """Runs one connector's source into the store. Not thread-safe; one per connector."""

    def __init__(
        self,
        store: EventStore,
        name: str,
        source: Source,
        settings: IngestSettings | None = None,
        schemas: SourceSchemas | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.source = source
        self.system = source.system
        self.settings = settings or IngestSettings()
        self.schemas = schemas or SourceSchemas(store)
        self.codec: Codec = store.codec
        self.quarantine = QuarantineLog(store, name, self.system)
        self._heads = Heads(self.settings.head_cache)
        self._envelopes: dict[str, Envelope] = {}
        self._drift: dict[str, str] = {}
        self._checkpoint_version: int | None = None
        self._c_schema = hub_schema("checkpoint_advanced")
        self.codec.add(self._c_schema)

    # -- checkpoint -------------------------------------------------------------------------

    def checkpoint(self) -> JSON | None:
        """The connector's stored checkpoint (None before the first batch)."""
        last = self.store.last(connector_stream(self.name))
        self._checkpoint_version = 0 if last is None else last.version
        if last is None:
            return None
        data = self.codec.decode(last.payload)
        return json.loads(data["checkpoint"])

    # -- schemas ------------------------------------------------------------------------------

    def discover(self) -> list[ObjectSchema]:
        """Ask the source for its schemas; accept compatible ones, remember incompatible ones.
        Returns what the source declared."""
        self._drift.clear()
        objects = list(self.source.discover())
        for obj in objects:
            self._accept(obj)
        return objects

    def _accept(self, obj: ObjectSchema) -> None:
        try:
            envelope = self.schemas.accept(self.system, obj.object, obj.schema)
        except IncompatibleSchemaError as e:
            self._drift[obj.object] = str(e)
            current = self.schemas.current(self.system, obj.object)
            if current is None:
                return
            envelope = current
        env = self._envelopes.get(obj.object)
        if env is None or env.envelope.fingerprint != envelope.fingerprint:
            self._envelopes[obj.object] = Envelope(envelope, record_schema_of(envelope))

    # -- the pass -----------------------------------------------------------------------------

    def run_once(
        self,
        *,
        progress: Callable[[int], None] | None = None,
        report: IngestReport | None = None,
    ) -> IngestReport:
        """Read everything the source has after the checkpoint; append it batch by batch.

        Batch N+1 is read and encoded while batch N is inserted and committed on the store's
        commit thread (`append_async`, with quick thread handoffs: `hub.perf`): it is
        appended only once batch N is durable, so a failed append raises with nothing after it
        stored, and the crash point `ingest.after_append` still sees one committed batch.
        Counts go to `report` (a new one if None) as batches commit, so a caller that passes
        one knows what was stored when the pass raises halfway."""
        report = IngestReport(self.name) if report is None else report
        self.discover()
        checkpoint = self.checkpoint()
        inflight: tuple[_Prepared, Future[int]] | None = None
        with quick_handoffs():
            try:
                for batch in self.source.read(checkpoint, self.settings.batch_size):
                    prepared = self._prepare(batch.changes, batch.checkpoint, inflight)
                    if inflight is not None:
                        done, inflight = inflight, None
                        self._committed(done[0], done[1].result, report, progress)
                    inflight = (prepared, self._append_async(prepared))
            finally:
                if inflight is not None:
                    self._committed(inflight[0], inflight[1].result, report, progress)
        return report

    def _append_batch(self, changes: Iterable[Change], checkpoint: JSON) -> tuple[int, int, int]:
        """Append the facts and quarantines of `changes` with the checkpoint, in one transaction;
        return (appended, skipped, quarantined)."""
        prepared = self._prepare(changes, checkpoint, None)
        self._committed(prepared, lambda: self.store.append(prepared.events))
        return prepared.appended, prepared.skipped, prepared.quarantined

    def _prepare(
        self,
        changes: Iterable[Change],
        checkpoint: JSON,
        inflight: tuple[_Prepared, Future[int]] | None,
    ) -> _Prepared:
        """A batch's events, checkpoint last, to append after the `inflight` one (if any)."""
        after = inflight[0] if inflight is not None else None
        changes = storable(list(changes))
        captured = now_micros()
        streams = [source_stream(self.system, c.object, c.key) for c in changes]
        heads = self._load_heads(streams, after.heads if after is not None else {})
        events, quarantined, skipped = self._facts(
            changes, streams, heads, envelope_tail(captured, self.name)
        )
        appended = len(events)
        events.extend(self.quarantine.events(quarantined))
        if after is None and self._checkpoint_version is None:
            self.checkpoint()
        previous = after.checkpoint_version if after is not None else self._checkpoint_version
        assert previous is not None
        cp = {
            "connector": self.name,
            "checkpoint": json.dumps(checkpoint, sort_keys=True, default=str),
            "changes": appended,
            "skipped": skipped,
            "quarantined": len(quarantined),
            "at": captured,
        }
        events.append(
            NewEvent(
                connector_stream(self.name),
                previous + 1,
                EventType.CHECKPOINT_ADVANCED.value,
                self.codec.encode(self._c_schema, cp),
            )
        )
        return _Prepared(
            events,
            heads,
            previous + 1,
            len(changes),
            appended,
            skipped,
            len(quarantined),
            _by_object(changes, events[:appended], quarantined),
        )

    def _append_async(self, prepared: _Prepared) -> Future[int]:
        try:
            return self.store.append_async(prepared.events)
        except BaseException:
            self._forget_versions()
            raise

    def _committed(
        self,
        prepared: _Prepared,
        wait: Callable[[], object],
        report: IngestReport | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Wait for the append of `prepared`; only then move the cached checkpoint version and
        stream heads past it. A failed append forgets the cached versions and raises."""
        try:
            wait()
        except BaseException:
            self._forget_versions()
            raise
        crashpoint("ingest.after_append")
        self._checkpoint_version = prepared.checkpoint_version
        self._heads.update(prepared.heads)
        if report is not None:
            report.batches += 1
            report.appended += prepared.appended
            report.skipped += prepared.skipped
            report.quarantined += prepared.quarantined
            for obj, counts in prepared.by_object.items():
                mine = report.by_object.setdefault(obj, [0, 0, 0])
                for i, n in enumerate(counts):
                    mine[i] += n
        if progress is not None:
            progress(prepared.changes)

    def _forget_versions(self) -> None:
        """Reload the checkpoint and quarantine versions from the store before the next append."""
        self._checkpoint_version = None
        self.quarantine.forget()

    def _facts(
        self,
        changes: list[Change],
        streams: list[str],
        heads: dict[str, tuple[int, bytes]],
        tail: bytes,
    ) -> tuple[list[NewEvent], list[dict[str, Any]], int]:
        """The SourceChanged events of `changes` (`heads` moves along as they are versioned),
        the quarantine records of those that cannot become facts, and how many were unchanged.
        """
        events: list[NewEvent] = []
        quarantined: list[dict[str, Any]] = []
        skipped = 0
        max_bytes = self.settings.max_field_bytes
        ready = {o: env for o, env in self._envelopes.items() if o not in self._drift}
        blake2b = hashlib.blake2b
        source_changed = EventType.SOURCE_CHANGED.value  # a plain str: bound as is by the driver
        for change, stream in zip(changes, streams, strict=True):
            try:
                env = ready.get(change.object) if change.error is None else None
                if env is None:
                    env = self._envelope_for(change)  # raises Quarantine
                if change.op == "delete":
                    body = None
                    digest = DELETED
                else:
                    record = change.record or {}
                    if not env.names.issuperset(record):
                        raise self.quarantine.unknown_field(change, env.names, record)
                    body = env.body(record)
                    if len(body) > max_bytes:  # only then can one field be too long
                        check_sizes(record, max_bytes)
                    digest = blake2b(body, digest_size=8).digest()
            except Quarantine as q:
                quarantined.append(self.quarantine.of(change, q))
                continue
            except ValidationError as e:
                quarantined.append(self.quarantine.invalid(change, e))
                continue
            head = heads.get(stream)
            if head is None:
                if digest == DELETED:
                    skipped += 1  # deleting what we never saw: nothing to record
                    continue
                version, op = 1, CREATE
            elif head[1] == digest:
                skipped += 1
                continue
            else:
                version = head[0] + 1
                op = DELETE if digest == DELETED else CREATE if head[1] == DELETED else UPDATE
            payload = env.encode(
                digest, op, change.key, change.position, change.source_time, tail, body
            )
            events.append(NewEvent(stream, version, source_changed, payload))
            heads[stream] = (version, digest)
        return events, quarantined, skipped

    def _load_heads(
        self, streams: list[str], pending: dict[str, tuple[int, bytes]]
    ) -> dict[str, tuple[int, bytes]]:
        """The head of each of `streams` that exists: from `pending` (the heads after an append
        still in flight), else the cache, else the store."""
        unique = dict.fromkeys(streams)
        heads = {s: pending[s] for s in unique if s in pending} if pending else {}
        cached, missing = self._heads.lookup(s for s in unique if s not in heads)
        heads.update(cached)
        if missing:
            heads.update(self.store.heads(missing))
        return heads

    def _envelope_for(self, change: Change) -> Envelope:
        """The envelope of `change`'s object, or the Quarantine that says why it has none."""
        if change.error is not None:
            raise self.quarantine.undecodable(change)
        drift = self._drift.get(change.object)
        if drift is not None:
            raise Quarantine("schema", drift, "see the reason")
        env = self._envelopes.get(change.object)
        if env is None:
            raise self.quarantine.unlisted(change)
        return env

    # -- re-ingest of quarantined input ---------------------------------------------------------

    def reingest(self, changes: list[Change]) -> tuple[int, int, int]:
        """Validate and append `changes` again (after a fix), without moving the checkpoint."""
        self.discover()
        current = self.checkpoint()
        return self._append_batch(changes, current)

    # -- reconciliation -------------------------------------------------------------------------

    def reconcile(self, *, force: bool = False) -> int:
        """Compare the source's key sets with the store; record deletes for missing keys
        (`hub.ingest.reconcile`), each object's with the unchanged checkpoint.

        Refuses (raises ReconcileRefused) when more than `reconcile_max_delete_ratio` of the
        known records would be deleted, unless `force`: an empty or truncated export must not
        wipe the canonical state.
        """
        objects = self.discover()  # also readies the envelopes the deletes are written in
        return reconcile(
            self.store,
            self.system,
            self.source,
            objects,
            lambda deletes: self._append_batch(deletes, self.checkpoint())[0],
            max_delete_ratio=self.settings.reconcile_max_delete_ratio,
            force=force,
        )


def _by_object(
    changes: list[Change], appended: list[NewEvent], quarantined: list[dict[str, Any]]
) -> dict[str, list[int]]:
    """Per object: [appended, skipped, quarantined] of one batch (most batches are of one
    object: counted without walking the events)."""
    objects = {c.object for c in changes}
    if len(objects) == 1:
        (obj,) = objects
        return {
            obj: [len(appended), len(changes) - len(appended) - len(quarantined), len(quarantined)]
        }
    read = Counter(c.object for c in changes)
    out = {obj: [0, 0, 0] for obj in read}
    for e in appended:
        parsed = parse_source_stream(e.stream)
        if parsed is not None:
            out[parsed.object][0] += 1
    for q in quarantined:
        out[q["object"]][2] += 1
    for obj, counts in out.items():
        counts[1] = read[obj] - counts[0] - counts[2]
    return out
