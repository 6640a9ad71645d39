"""Ingest: Source batches → validated Avro facts, appended with the connector's checkpoint.

For each batch: validate every change against its object's schema, encode it in the object's
envelope, drop it if it equals the stream's last state, and append the remaining events **and**
a CheckpointAdvanced event in one transaction. Input that cannot become a fact (undecodable,
invalid, oversize, or of an object whose schema changed incompatibly) is appended as a
RecordQuarantined event in the same transaction: the hub keeps going, nothing is half-applied.

Streams: `source/<system>/<object>/<key>` per source record, `connector/<name>` for checkpoints,
`quarantine/<name>` for quarantined input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import fastavro

from hub.avro import MAGIC, Codec, Schema
from hub.config import IngestSettings
from hub.crashpoints import crashpoint
from hub.errors import IncompatibleSchemaError, SyncHubError, ValidationError
from hub.registry import SourceSchemas, schema_summary
from hub.schemas import hub_schema
from hub.spi import Source
from hub.store.base import EventStore, NewEvent
from hub.types import JSON, Change, ObjectSchema

DELETED = b"\x00" * 8
"""Digest of a deletion: no record."""

CHECKPOINT_TYPE = "CheckpointAdvanced"
QUARANTINE_TYPE = "RecordQuarantined"
SOURCE_TYPE = "SourceChanged"


def source_stream(system: str, obj: str, key: str) -> str:
    return f"source/{system}/{obj}/{key}"


def connector_stream(name: str) -> str:
    return f"connector/{name}"


def quarantine_stream(name: str) -> str:
    return f"quarantine/{name}"


def micros(t: dt.datetime) -> int:
    """Microseconds since the epoch; a naive `t` is UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1_000_000)


def now_micros() -> int:
    return time.time_ns() // 1000


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


@dataclass
class IngestReport:
    """What one ingest pass did: the counts are of what was stored, also when it then failed."""

    connector: str
    batches: int = 0
    appended: int = 0
    skipped: int = 0
    quarantined: int = 0
    deleted_by_reconciliation: int = 0
    reconcile_refused: str | None = None
    """Why reconciliation recorded no deletes (ReconcileRefused); the captured changes stay."""
    errors: list[str] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        """Count `other` (a later read of the same connector in the same pass) in this one."""
        self.batches += other.batches
        self.appended += other.appended
        self.skipped += other.skipped
        self.quarantined += other.quarantined
        self.deleted_by_reconciliation += other.deleted_by_reconciliation
        self.reconcile_refused = other.reconcile_refused or self.reconcile_refused
        self.errors += other.errors


class _Heads:
    """Bounded LRU cache of stream heads: stream → (version, digest)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    def lookup(self, streams: Iterable[str]) -> tuple[dict[str, tuple[int, bytes]], list[str]]:
        """The cached heads among `streams` (marked recently used), and the streams not cached."""
        found: dict[str, tuple[int, bytes]] = {}
        missing: list[str] = []
        d = self._d
        touch = d.move_to_end
        for s in streams:
            head = d.get(s)
            if head is None:
                missing.append(s)
            else:
                found[s] = head
                touch(s)
        return found, missing

    def update(self, heads: Mapping[str, tuple[int, bytes]]) -> None:
        """Store `heads`; new streams become the most recently used, the oldest are dropped."""
        if self.size <= 0:
            return
        d = self._d
        for stream, head in heads.items():  # faster than OrderedDict.update
            d[stream] = head
        while len(d) > self.size:
            d.popitem(last=False)


class _Envelope:
    """Encodes one object's changes: the record body once (for the digest), then the envelope.

    An Avro record is the concatenation of its fields' encodings and `after` is the envelope's
    last field (a union: branch 0 null, branch 1 the record), so an envelope's bytes are exactly
    header + prefix fields + branch index + body. fastavro encodes the body; the prefix fields
    (fixed, enum, strings, longs) are laid out by `encode`, whose output is checked byte for byte
    against fastavro's in tests/unit/test_avro_and_schemas.py. This halves the per-change cost.
    """

    def __init__(self, envelope: Schema, record_schema: dict[str, Any]) -> None:
        self.envelope = envelope
        self.record = fastavro.parse_schema(record_schema)
        self.names = frozenset(f["name"] for f in record_schema["fields"])
        """The record's field names: a field outside them would be dropped by the encoder."""
        self.header = MAGIC + envelope.fingerprint
        self.name = envelope.name
        self._buf = io.BytesIO()

    def body(self, record: Mapping[str, Any]) -> bytes:
        buf = self._buf
        buf.seek(0)
        buf.truncate()
        try:
            fastavro.schemaless_writer(buf, self.record, record)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
            raise _explain(self.record, record, e) from None
        return buf.getvalue()

    def encode(
        self,
        digest: bytes,
        op: int,
        key: str,
        position: str,
        source_time: dt.datetime | None,
        tail: bytes,
        body: bytes | None,
    ) -> bytes:
        """The envelope of one change; `op` indexes OPS, `tail` = `_tail(captured_at, connector)`
        (the same for a whole batch) and `body` is None for a delete."""
        return b"".join(
            (
                self.header,
                digest,
                _BYTE[op << 1],
                _str(key),
                _str(position),
                _time(source_time),
                tail,
                b"\x00" if body is None else b"\x02" + body,
            )
        )


OPS = {"create": 0, "update": 1, "delete": 2}
_CREATE, _UPDATE, _DELETE = OPS.values()

_BYTE = [bytes([b]) for b in range(128)]


def _long(n: int) -> bytes:
    """Avro long: zig-zag, then base-128 varint (7-bit groups, low first, high bit = "more")."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return _BYTE[z]
    k = (z.bit_length() + 6) // 7
    if k > 8:
        return _long_loop(z)
    # Spread the 8 groups of 7 bits to one group per byte (halving: 28, 14, 7 bits apart), set
    # every continuation bit, clear the last byte's, and keep the k bytes.
    x = (z & 0xFFFFFFF) | ((z & 0xFFFFFFF0000000) << 4)
    x = (x & 0x00003FFF00003FFF) | ((x & 0x0FFFC0000FFFC000) << 2)
    x = (x & 0x007F007F007F007F) | ((x & 0x3F803F803F803F80) << 1)
    return ((x | 0x8080808080808080) & ((1 << (8 * k - 1)) - 1)).to_bytes(k, "little")


def _long_loop(z: int) -> bytes:
    """Varint of a zig-zagged long, a byte at a time."""
    out = bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    n = len(b)
    return (_BYTE[n << 1] if n < 64 else _long(n)) + b


def _time(t: dt.datetime | None) -> bytes:
    """Avro ["null", long] of `micros(t)`."""
    return b"\x00" if t is None else b"\x02" + _long(micros(t))


def _tail(captured: int, connector: str) -> bytes:
    """The envelope fields after `source_time`: `captured_at` (µs) and `connector`."""
    return _long(captured) + _str(connector)


def _explain(parsed: Any, record: Mapping[str, Any], error: Exception) -> ValidationError:
    fields = parsed.get("fields", []) if isinstance(parsed, dict) else []
    for f in fields:
        name = f["name"]
        t = f["type"]
        value = record.get(name)
        nullable = isinstance(t, list) and "null" in t
        if value is None:
            if not nullable and "default" not in f:
                return ValidationError(
                    f"field {name!r} is missing or null, but the schema requires a value",
                    field=name,
                )
            continue
        if isinstance(value, str) and _printable(value) != value:
            return ValidationError(
                f"field {name!r} is not valid Unicode text: {_printable(value)!r} (an "
                "undecodable byte or a lone surrogate)",
                field=name,
            )
        try:
            ok = fastavro.validation.validate(value, t, raise_errors=False)
        except Exception:
            ok = False
        if not ok:
            expected = t if isinstance(t, str) else schema_summary({"fields": [f]}).split(":", 1)[1]
            return ValidationError(
                f"field {name!r} has value {value!r} ({type(value).__name__}), expected {expected}",
                field=name,
            )
    return ValidationError(f"record does not match its schema: {error}")


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
        self._heads = _Heads(self.settings.head_cache)
        self._envelopes: dict[str, _Envelope] = {}
        self._drift: dict[str, str] = {}
        self._checkpoint_version: int | None = None
        self._quarantine_version: int | None = None
        self._q_schema = hub_schema("record_quarantined")
        self._c_schema = hub_schema("checkpoint_advanced")
        self.codec.add(self._q_schema)
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
            from hub.schemas import record_schema_of

            self._envelopes[obj.object] = _Envelope(envelope, record_schema_of(envelope))

    # -- the pass -----------------------------------------------------------------------------

    def run_once(
        self,
        *,
        progress: Callable[[int], None] | None = None,
        report: IngestReport | None = None,
    ) -> IngestReport:
        """Read everything the source has after the checkpoint; append it batch by batch.

        Batch N+1 is read and encoded while batch N is being committed (`append_async`): it is
        appended only once batch N is durable, so a failed append raises with nothing after it
        stored, and the crash point `ingest.after_append` still sees one committed batch.
        Counts go to `report` (a new one if None) as batches commit, so a caller that passes
        one knows what was stored when the pass raises halfway."""
        report = IngestReport(self.name) if report is None else report
        self.discover()
        checkpoint = self.checkpoint()
        inflight: tuple[_Prepared, Future[int]] | None = None
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
        changes = _storable(list(changes))
        captured = now_micros()
        streams = [source_stream(self.system, c.object, c.key) for c in changes]
        heads = self._load_heads(streams, after.heads if after is not None else {})
        events, quarantined, skipped = self._facts(
            changes, streams, heads, _tail(captured, self.name)
        )
        appended = len(events)
        events.extend(self._quarantine_events(quarantined))
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
                CHECKPOINT_TYPE,
                self.codec.encode(self._c_schema, cp),
            )
        )
        return _Prepared(
            events, heads, previous + 1, len(changes), appended, skipped, len(quarantined)
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
        if progress is not None:
            progress(prepared.changes)

    def _forget_versions(self) -> None:
        """Reload the checkpoint and quarantine versions from the store before the next append."""
        self._checkpoint_version = None
        self._quarantine_version = None

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
        for change, stream in zip(changes, streams, strict=True):
            try:
                env = ready.get(change.object) if change.error is None else None
                if env is None:
                    env = self._envelope_for(change)  # raises _Quarantine
                if change.op == "delete":
                    body = None
                    digest = DELETED
                else:
                    record = change.record or {}
                    if not env.names.issuperset(record):
                        raise self._unknown_field(change, env, record)
                    body = env.body(record)
                    if len(body) > max_bytes:  # only then can one field be too long
                        _check_sizes(record, max_bytes)
                    digest = blake2b(body, digest_size=8).digest()
            except _Quarantine as q:
                quarantined.append(self._quarantine_record(change, q.kind, str(q), q.fix, q.field))
                continue
            except ValidationError as e:
                quarantined.append(self._invalid(change, e))
                continue
            head = heads.get(stream)
            if head is None:
                if digest == DELETED:
                    skipped += 1  # deleting what we never saw: nothing to record
                    continue
                version, op = 1, _CREATE
            elif head[1] == digest:
                skipped += 1
                continue
            else:
                version = head[0] + 1
                op = _DELETE if digest == DELETED else _CREATE if head[1] == DELETED else _UPDATE
            payload = env.encode(
                digest, op, change.key, change.position, change.source_time, tail, body
            )
            events.append(NewEvent(stream, version, SOURCE_TYPE, payload))
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

    def _unknown_field(
        self, change: Change, env: _Envelope, record: Mapping[str, Any]
    ) -> _Quarantine:
        """A record with a field its object's schema lacks: encoding would drop the value."""
        name = sorted(set(record) - env.names)[0]
        return _Quarantine(
            "schema",
            f"{self.system}/{change.object} record {change.key!r} at {change.position or '?'} "
            f"has field {name!r}, which the object's schema lacks (it has "
            f"{', '.join(sorted(env.names))}): stored as it is, the value would be lost",
            f"declare {name!r} in connector {self.name}'s schema for {change.object} (file "
            f"drop: `objects.{change.object}.fields`), or stop the source sending it; then "
            "`synchub exceptions retry <id>`",
            name,
        )

    def _envelope_for(self, change: Change) -> _Envelope:
        if change.error is not None:
            raise _Quarantine(
                "decode",
                f"{self.system}/{change.object} input at {change.position or '?'}: {change.error}",
                "fix or remove the input in the source; it was kept verbatim in the quarantine",
            )
        drift = self._drift.get(change.object)
        if drift is not None:
            raise _Quarantine("schema", drift, "see the reason")
        env = self._envelopes.get(change.object)
        if env is None:
            raise _Quarantine(
                "schema",
                f"{self.system} sent a change of object {change.object!r}, which its discover() "
                "did not list",
                f"declare object {change.object!r} in connector {self.name}'s config",
            )
        return env

    # -- quarantine ---------------------------------------------------------------------------

    def _invalid(self, change: Change, e: ValidationError) -> dict[str, Any]:
        return self._quarantine_record(
            change,
            "validation",
            f"{self.system}/{change.object} record {change.key!r} at {change.position or '?'}: {e}",
            "correct the record in the source (or the declared field type in the "
            "connector config), then `synchub exceptions retry <id>`",
            e.field,
        )

    def _quarantine_record(
        self, change: Change, kind: str, reason: str, fix: str, field_name: str | None
    ) -> dict[str, Any]:
        raw = change.raw
        if raw is None:
            raw = json.dumps(change.record, sort_keys=True, default=str)
        return {
            "connector": self.name,
            "system": self.system,
            "object": change.object,
            "key": change.key or None,
            "kind": kind,
            "field": field_name,
            "reason": _printable(reason),
            "fix": fix,
            "raw": _printable(raw),
            "position": change.position,
            "at": now_micros(),
        }

    def _quarantine_events(self, records: list[dict[str, Any]]) -> list[NewEvent]:
        if not records:
            return []
        if self._quarantine_version is None:
            last = self.store.last(quarantine_stream(self.name))
            self._quarantine_version = 0 if last is None else last.version
        out = []
        for r in records:
            self._quarantine_version += 1
            out.append(
                NewEvent(
                    quarantine_stream(self.name),
                    self._quarantine_version,
                    QUARANTINE_TYPE,
                    self.codec.encode(self._q_schema, r),
                )
            )
        return out

    # -- re-ingest of quarantined input ---------------------------------------------------------

    def reingest(self, changes: list[Change]) -> tuple[int, int, int]:
        """Validate and append `changes` again (after a fix), without moving the checkpoint."""
        self.discover()
        current = self.checkpoint()
        return self._append_batch(changes, current)

    # -- reconciliation -------------------------------------------------------------------------

    def reconcile(self, *, force: bool = False) -> int:
        """Compare the source's key sets with the store; record deletes for missing keys.

        Refuses (raises ReconcileRefused) when more than `reconcile_max_delete_ratio` of the
        known records would be deleted, unless `force`: an empty or truncated export must not
        wipe the canonical state.
        """
        total = 0
        for obj in self.discover():  # also readies the envelopes the deletes are written in
            keys = self.source.current_keys(obj.object)
            if keys is None:
                continue
            prefix = source_stream(self.system, obj.object, "")
            live = {
                s[len(prefix) :]
                for s, (_v, digest) in self.store.heads_by_prefix(prefix).items()
                if digest != DELETED
            }
            gone = sorted(live - keys)
            if not gone:
                continue
            ratio = len(gone) / max(len(live), 1)
            if ratio > self.settings.reconcile_max_delete_ratio and not force:
                raise ReconcileRefused(
                    f"reconciliation of {self.system}/{obj.object} would delete {len(gone)} of "
                    f"{len(live)} records ({ratio:.0%}), more than the allowed "
                    f"{self.settings.reconcile_max_delete_ratio:.0%}. If the source really lost "
                    "them, run `synchub sync --once --reconcile-force`; otherwise check the export."
                )
            when = dt.datetime.now(dt.UTC)
            changes = [
                Change(obj.object, key, "delete", None, position="reconciliation", source_time=when)
                for key in gone
            ]
            appended, _s, _q = self._append_batch(changes, self.checkpoint())
            total += appended
        return total


class ReconcileRefused(SyncHubError):
    """Reconciliation would delete too much at once."""


class _Quarantine(Exception):
    def __init__(self, kind: str, message: str, fix: str, field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.fix = fix
        self.field = field


def _printable(text: str) -> str:
    """`text` if it is valid Unicode (encodable as UTF-8), else with each undecodable byte a
    source kept by surrogateescape shown as `\\xNN` and any other lone surrogate as `\\uNNNN`."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _storable(changes: list[Change]) -> list[Change]:
    """`changes` with every key and position storable as UTF-8 text (stream names, envelope
    strings). A position that is not (e.g. a file name in Latin-1) is stored escaped; a key that
    is not (a Latin-1 byte, a JSON "\\ud800" escape) cannot name a record: the change becomes an
    undecodable input, quarantined under its escaped key."""
    for i, c in enumerate(changes):
        if c.key.isascii() and c.position.isascii():
            continue
        key, position = _printable(c.key), _printable(c.position)
        if key == c.key and position == c.position:
            continue
        error = c.error
        if key != c.key and error is None:
            error = (
                f"the key {key!r} is not valid Unicode text (an undecodable byte or a lone "
                "surrogate); export the source as UTF-8 or fix the key"
            )
        changes[i] = replace(c, key=key, position=position, error=error)
    return changes


def _check_sizes(record: Mapping[str, Any], max_bytes: int) -> None:
    for name, value in record.items():
        if isinstance(value, str | bytes) and len(value) > max_bytes // 4:
            size = (
                len(value.encode("utf-8", "surrogatepass"))
                if isinstance(value, str)
                else len(value)
            )
            if size > max_bytes:
                raise _Quarantine(
                    "oversize",
                    f"field {name!r} is {size} bytes, more than ingest.max_field_bytes ({max_bytes})",
                    "shorten the value in the source, or raise ingest.max_field_bytes in the config",
                    name,
                )


__all__ = ["IngestReport", "Ingestor", "ReconcileRefused", "source_stream"]
