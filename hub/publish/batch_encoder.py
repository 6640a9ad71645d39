"""A batch's Kafka messages, made in one pass: the publisher's hot loop.

Each change gives two messages, in order: to its change topic (the change record: op, ids,
the changed fields' names, the state before and after) and to its compacted state topic (the
state after, or a tombstone). A state is encoded once for both, and a change's `before` is the
body of the entity's previous state in the batch when there is one. `BatchEncoder.rows` takes
the change feed's rows as the audit stores them and folds them as it goes (feed.folded), so no
FeedChange is made between the store and the messages.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from hub.avro import Schema
from hub.canonical_schemas import CanonicalSchemas
from hub.codec.encoder import avro_long
from hub.publish.feed import OPS, correlation_id, folded
from hub.publish.stored_encoder import SLOW, StoredEncoder

if TYPE_CHECKING:
    from hub.publish.topics import TopicSchemas

__all__ = ["BatchEncoder", "EntityOut", "Message", "PublishForm", "change_body", "form_id"]

log = logging.getLogger("synchub.publish")

Message = tuple[str, bytes, bytes | None, list[tuple[str, str | bytes | None]]]
"""(topic, key, value, headers) of one produced message."""

_OP: Final = {op: avro_long(i) for i, op in enumerate(OPS)}
_NULL: Final = avro_long(0)
_SOME: Final = avro_long(1)
NAMES_KEPT: Final = 10_000
"""`changed` lists whose Avro arrays are remembered (the same few come again and again)."""


class EntityOut:
    """Everything the loop needs about one entity's messages."""

    def __init__(
        self,
        change_topic: str,
        state_topic: str,
        schema_header: tuple[str, bytes],
        form: bytes,
        change_prefix: bytes,
        state_prefix: bytes,
        stored: StoredEncoder | None,
        slow: Callable[[str, dict[str, Any]], bytes],
    ) -> None:
        self.change_topic = change_topic
        self.state_topic = state_topic
        self.schema_header = schema_header
        """("synchub.schema", the change schema's fingerprint in hex)."""
        self.form = form
        """`form_id` of the change schema (a published form made under another is not used)."""
        self.change_prefix = change_prefix
        self.state_prefix = state_prefix
        """What precedes a body in a value: single-object header or the wire format's."""
        self.stored = stored
        """The stored-form encoder of the state record (None: not flat)."""
        self.slow = slow
        """`slow(canonical_id, fields)`: the two-step state body (its conversions, its errors)."""

    def body(self, canonical_id: str, fields: dict[str, Any]) -> bytes:
        """The Avro body of a state: from the stored form when the plan takes it plainly."""
        stored = self.stored
        if stored is not None:
            try:
                return stored(fields, canonical_id.split("/", 1)[-1])
            except SLOW:
                pass  # the two steps: their conversions, their errors
        return self.slow(canonical_id, fields)


def _string(text: str) -> bytes:
    data = text.encode()
    return avro_long(len(data)) + data


def change_body(
    prefix: bytes,
    op: str,
    canonical_id: str,
    position: int,
    names: bytes,
    before: bytes | None,
    after: bytes | None,
) -> bytes:
    """A change record's value from its parts (`names`: the `changed` array, see `names`)."""
    return b"".join(
        (
            prefix,
            _OP[op],
            _string(canonical_id),
            avro_long(position),
            names,
            _NULL if before is None else _SOME + before,
            _NULL if after is None else _SOME + after,
        )
    )


def changed_names(cache: dict[tuple[str, ...], bytes], changed: tuple[str, ...]) -> bytes:
    """The `changed` field of a change record (an array of names, then the end of it)."""
    encoded = cache.get(changed)
    if encoded is None:
        items = b"".join([avro_long(len(changed))] + [_string(n) for n in changed])
        encoded = (items if changed else b"") + _NULL
        if len(cache) < NAMES_KEPT:
            cache[changed] = encoded
    return encoded


Headers = list[tuple[str, str | bytes | None]]


def _headers(
    position: int,
    seq: int,
    schema_header: tuple[str, bytes],
    version: int,
    system: str,
    obj: str,
    source_key: str,
    op: str,
) -> Headers:
    """A change message's headers (its state message has the first five)."""
    return [
        ("synchub.position", str(position)),
        ("synchub.seq", str(seq)),
        schema_header,
        ("synchub.mapping_version", str(version)),
        ("synchub.system", system),
        ("synchub.correlation_id", correlation_id(system, obj, source_key, position)),
        ("synchub.op", op),
    ]


SharedHeaders = tuple[tuple[str, str], tuple[str, str], tuple[str, str]]


def _shared_headers(version: int, system: str, op: str) -> SharedHeaders:
    """The headers of a change that depend on its mapping version, system and op only."""
    return (
        ("synchub.mapping_version", str(version)),
        ("synchub.system", system),
        ("synchub.op", op),
    )


class BatchEncoder:
    """The messages of batches of changes (see the module's doc). `entity_out(entity)` says
    how an entity's are made; asked once per entity."""

    def __init__(
        self, entity_out: Callable[[str], EntityOut], names: dict[tuple[str, ...], bytes]
    ) -> None:
        self.entity_out = entity_out
        self.outs: dict[str, EntityOut] = {}
        self.names = names
        self.same_headers: dict[tuple[int, str, str], SharedHeaders] = {}
        """(mapping version, system, op) → their headers (a handful of combinations)."""

    def rows(self, rows: list[Any], states: dict[str, dict[str, Any]]) -> list[Message]:
        """The messages of the feed's rows (audit.CHANGE_COLUMNS), `states` holding each
        entity's state before the first of them (updated as the rows are folded)."""
        return self.changes(folded(rows, states))

    def published(self, rows: list[Any]) -> list[Message] | None:
        """The messages of the feed's rows (audit.FORM_COLUMNS) from the published form the
        fold made of each: the prefixes put before the bodies, the headers made of the row.
        None when a row has none, or one made under another schema (the caller then reads
        the rows with their fields, and folds and encodes them: `rows`)."""
        outs, out_of, same = self.outs, self.entity_out, self.same_headers
        out: list[Message] = []
        append = out.append
        for position, seq, cid, entity, op, system, obj, src, v, avro, state, schema in rows:
            t = outs.get(entity)
            if t is None:
                t = outs[entity] = out_of(entity)
            if avro is None or schema != t.form:
                return None
            key = cid.encode()
            # _headers inlined, the headers most changes share made once (≈ 0.2 µs a change);
            # the correlation id as feed.correlation_id makes it. Both kept equal to what
            # `changes` makes: tests/unit/test_publish_form.py compares the messages
            shared = same.get((v, system, op))
            if shared is None:
                shared = same[v, system, op] = _shared_headers(v, system, op)
            at = str(position)
            headers: Headers = [
                ("synchub.position", at),
                ("synchub.seq", str(seq)),
                t.schema_header,
                shared[0],
                shared[1],
                ("synchub.correlation_id", f"{system}/{obj}/{src}@{at}"),
                shared[2],
            ]
            append((t.change_topic, key, t.change_prefix + avro, headers))
            body = None if state < 0 else t.state_prefix + avro[len(avro) - state :]
            append((t.state_topic, key, body, headers[:5]))
        return out

    def changes(self, changes: Iterable[tuple[Any, ...]]) -> list[Message]:
        """The messages of changes (feed.FeedChange or tuples of its fields), in order. One
        loop with everything at hand: the publisher's hottest code (bench/publish.py)."""
        outs, out_of, names = self.outs, self.entity_out, self.names
        out: list[Message] = []
        append = out.append
        bodies: dict[str, bytes] = {}
        """canonical id → the body of its state after its last change so far in the batch
        (the next change's `before`)."""
        for position, seq, entity, cid, op, changed, before, after, system, obj, src, v in changes:
            t = outs.get(entity)
            if t is None:
                t = outs[entity] = out_of(entity)
            key = cid.encode()
            headers = _headers(position, seq, t.schema_header, v, system, obj, src, op)
            before_body = None
            if before is not None:
                before_body = bodies.get(cid)
                if before_body is None:
                    before_body = t.body(cid, before)
            if after is None:
                bodies.pop(cid, None)
                after_body = state = None
            else:
                after_body = bodies[cid] = t.body(cid, after)
                state = t.state_prefix + after_body
            value = change_body(
                t.change_prefix, op, cid, position, changed_names(names, tuple(changed)),
                before_body, after_body,
            )  # fmt: skip
            append((t.change_topic, key, value, headers))
            append((t.state_topic, key, state, headers[:5]))
        return out


FORM_VERSION = b"1"
"""Changes when the bytes of a published form would (a form made before is then not used)."""


def form_id(change_schema: Schema) -> bytes:
    """What a published form was made under: the change schema's whole text (its fingerprint
    leaves logical types, scales and precisions out) and FORM_VERSION, hashed (8 bytes)."""
    return hashlib.blake2b(FORM_VERSION + change_schema.json.encode(), digest_size=8).digest()


class PublishForm:
    """Makes a change's published form as the projections' fold records it (given to the
    Projector: projections.tables.PublishForm): the change record's Avro body without its
    prefix, the length of the state body it ends with (-1: none), and `form_id` of the change
    schema, under the canonical schemas the fold maps with. Only from states the stored-form
    encoder takes plainly (the same bytes `BatchEncoder.changes` makes of the feed's rows,
    tests/unit/test_publish_form.py); anything else — a value for the two-step path (a naive
    timestamp is local time to fastavro: the publisher's), a record that is not flat, schemas
    it cannot make — gives None and the publisher folds and encodes that change itself.
    Never raises: a publishing aid must not stop the projections."""

    def __init__(self) -> None:
        self._canonical: CanonicalSchemas | None = None
        self._topics: TopicSchemas | None = None
        self.names: dict[tuple[str, ...], bytes] = {}
        self.ids: dict[str, tuple[StoredEncoder, bytes] | None] = {}
        self._failed = False

    def __call__(
        self,
        canonical: CanonicalSchemas,
        canonical_id: str,
        entity: str,
        op: str,
        position: int,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        changed: list[str],
    ) -> tuple[bytes, int, bytes] | None:
        try:
            made = self._encoder(canonical, entity)
            if made is None:
                return None
            encode, made_under = made
            natural = canonical_id.split("/", 1)[-1]
            before_body = None if before is None else encode(before, natural)
            after_body = None if after is None else encode(after, natural)
            names = changed_names(self.names, tuple(changed))
            body = change_body(b"", op, canonical_id, position, names, before_body, after_body)
        except SLOW:
            return None  # the two-step path's value: the publisher's
        except Exception:  # never stops the fold: the publisher encodes it, or says why
            if not self._failed:
                log.warning("cannot make the published form of %s", canonical_id, exc_info=True)
                self._failed = True
            return None
        return body, -1 if after_body is None else len(after_body), made_under

    def _encoder(
        self, canonical: CanonicalSchemas, entity: str
    ) -> tuple[StoredEncoder, bytes] | None:
        """The stored-form encoder of `entity`'s state and its form id (None: not flat)."""
        if canonical is not self._canonical or self._topics is None:
            from hub.publish.topics import TopicSchemas  # topics.py imports this module

            self._topics, self._canonical = TopicSchemas(canonical), canonical
            self.ids.clear()
        if entity not in self.ids:
            encode = self._topics.stored_encoder(entity)
            change = self._topics.change(entity)
            self.ids[entity] = None if encode is None else (encode, form_id(change))
        return self.ids[entity]
