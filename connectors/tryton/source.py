"""The Tryton Source: polls business objects by modification stamp through an OverlapCursor.

Each object is one Tryton model (plus a domain) read with `search_read`, ordered by
`last_modified_at` (Tryton's SQL `COALESCE(write_date, create_date)`) then `id`, paged by
keyset (never by offset, so rows that move while paging are not skipped). Stamps are naive UTC
and are the *start* time of the writing transaction: a transaction that commits late makes
rows older than ones already read, so every poll re-reads `lag` seconds below the high-water
mark and drops the (id, stamp) pairs it already emitted.

A row also shows fields of related records (an employee's name is its party's): renaming the
party does not change the employee's stamp. Such objects `follow` the related model: each poll
also reads the related records changed in the window (with their own cursor) and reads again
the rows that point at them.

Hard deletes are invisible to polling: `current_keys(object)` lists the ids that exist now
(archived parties and employees included) and the hub's reconciliation turns missing ids into
deletes. Keys are Tryton ids as text; many-to-one fields are the target's id as text.

An object may be polled less often than every read (`every`: seconds between its polls, e.g.
rate cards hourly); its cursor keeps its place meanwhile, so nothing is missed, only seen later.

The objects themselves (models, domains, fields read, row → record) are in `objects.py`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from connectors.tryton.client import Domain, TrytonClient
from connectors.tryton.objects import ARCHIVED_TOO, OBJECTS, PROFILES, Row, TrytonObject
from hub.spi import JSON, Batch, Change, ConnectorError, ObjectSchema, OverlapCursor

__all__ = ["OBJECTS", "TrytonObject", "TrytonSource"]

CHECKPOINT_VERSION = 1
_EPOCH = dt.datetime(1970, 1, 1)
_ORDER = (("last_modified_at", "ASC"), ("id", "ASC"))
_KEYS_PAGE = 10_000


# -- stamps --------------------------------------------------------------------------------


def stamp_us(stamp: dt.datetime) -> float:
    """A naive UTC stamp as epoch microseconds (an integral float: exact, so keys compare)."""
    return float((stamp - _EPOCH) // dt.timedelta(microseconds=1))


def from_us(us: float) -> dt.datetime:
    """Inverse of `stamp_us`."""
    return _EPOCH + dt.timedelta(microseconds=int(us))


def _follow_name(obj: TrytonObject, path: str) -> str:
    """The checkpoint entry of the cursor over `obj`'s related records at `path`."""
    return f"{obj.name}<{path}"


# -- the source ----------------------------------------------------------------------------


class TrytonSource:
    """Source over the objects named in `objects`, by default those of `profile` (PROFILES:
    `erp` or `crm`).

    The checkpoint is `{"version": 1, "objects": {name: OverlapCursor JSON}}` with stamps in
    epoch microseconds; `name` is an object, or `<object><<path>` for the related records it
    follows (e.g. `employees<party`).
    """

    def __init__(
        self,
        system: str,
        client: TrytonClient,
        *,
        lag: float = 60.0,
        page_size: int = 500,
        objects: list[str] | None = None,
        profile: str = "erp",
        every: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.system = system
        self.client = client
        self.lag_us = lag * 1_000_000
        self.page_size = page_size
        unknown = sorted(set(objects or ()) - set(OBJECTS))
        if unknown:
            raise ConnectorError(
                f"connector {system!r} (tryton) has no objects {unknown}; its objects are "
                f"{sorted(OBJECTS)}"
            )
        if profile not in PROFILES:
            raise ConnectorError(
                f"connector {system!r} (tryton) has no profile {profile!r}; use one of "
                f"{sorted(PROFILES)}"
            )
        self.objects = [OBJECTS[n] for n in (objects or PROFILES[profile])]
        self.every = dict(every or {})
        """Object → seconds between its polls (rate cards hourly, say); others every read."""
        unread = sorted(set(self.every) - {o.name for o in self.objects})
        if unread:
            raise ConnectorError(
                f"connector {system!r} (tryton): `every` names {unread}, which it does not "
                f"read; its objects are {[o.name for o in self.objects]}"
            )
        self.clock = clock
        self._due: dict[str, float] = {}
        """Object → when it is polled next (this process: each start polls every object)."""

    def discover(self) -> list[ObjectSchema]:
        return [o.schema() for o in self.objects]

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        """Changes of every object after `checkpoint`, object by object, in stamp order.

        A poll that finds nothing new yields no batch (the checkpoint would not move).
        """
        cursors = self._load(checkpoint)
        pending: list[Change] = []
        last: JSON = self._dump(cursors)
        for obj in self.objects:
            if not self._is_due(obj.name):
                continue
            for change in self._poll_object(obj, cursors):
                pending.append(change)
                if len(pending) >= batch_size:
                    last = self._dump(cursors)
                    yield Batch(tuple(pending), last)
                    pending = []
        final = self._dump(cursors)
        if pending or final != last:
            yield Batch(tuple(pending), final)

    def _is_due(self, name: str) -> bool:
        """Whether object `name` is polled in this read (its `every` has passed since the
        last); when it is, its next poll is scheduled."""
        if name not in self.every:
            return True
        now = self.clock()
        if now < self._due.get(name, now):
            return False
        self._due[name] = now + self.every[name]
        return True

    def current_keys(self, object: str) -> set[str] | None:
        """Every id of `object` that exists now (archived records included)."""
        obj = self._object(object)
        keys: set[str] = set()
        after = 0
        while True:
            ids = self.client.search(
                obj.model,
                [*obj.domain, ("id", ">", after)],
                limit=_KEYS_PAGE,
                order=[("id", "ASC")],
                context=obj.context,
            )
            keys.update(str(i) for i in ids)
            if len(ids) < _KEYS_PAGE:
                return keys
            after = ids[-1]

    def close(self) -> None:
        self.client.close()

    # -- polling ----------------------------------------------------------------------------

    def _poll_object(
        self, obj: TrytonObject, cursors: Mapping[str, OverlapCursor]
    ) -> Iterator[Change]:
        """The object's rows changed through a related record, then the rows changed themselves
        (in that order: a related change made after the object's rows were read is caught)."""
        first = cursors[obj.name].since() is None
        for path, model in obj.follow:
            yield from self._follow(obj, path, model, cursors[_follow_name(obj, path)], first)
        yield from self._poll(obj, cursors[obj.name])

    def _poll(self, obj: TrytonObject, cursor: OverlapCursor) -> Iterator[Change]:
        """Rows with stamp >= cursor.since(), keyset-paged, admitted through the cursor."""
        for rows in self._pages(obj.model, obj.domain, obj.read, cursor.since(), obj.context):
            if obj.enrich is not None:
                obj.enrich(self.client, rows)
            for row in rows:
                stamp: dt.datetime = row["last_modified_at"]
                key = str(row["id"])
                if cursor.admit(key, stamp.isoformat(), stamp_us(stamp)):
                    yield self._change(obj, key, stamp, row)

    def _follow(
        self, obj: TrytonObject, path: str, model: str, cursor: OverlapCursor, baseline: bool
    ) -> Iterator[Change]:
        """The rows of `obj` whose related record at `path` (of `model`) changed after `cursor`.

        A related record is admitted only after the rows pointing at it were yielded, so a
        checkpoint never covers a related change whose rows are still to come. On the first poll
        of the object (`baseline`) its own pass reads every row anyway: only the mark is set.
        (A relation with no record yet has no mark either: its first records, made after the
        object's first poll, are followed like any change.)
        """
        for related in self._pages(model, [], (), cursor.since(), ARCHIVED_TOO):
            fresh = [
                (str(r["id"]), r["last_modified_at"])
                for r in related
                if cursor.seen.get(str(r["id"]), ("", 0.0))[0] != r["last_modified_at"].isoformat()
            ]
            if fresh and not baseline:
                yield from self._pointing_at(obj, path, [int(k) for k, _ in fresh])
            for key, stamp in fresh:
                cursor.admit(key, stamp.isoformat(), stamp_us(stamp))

    def _pointing_at(self, obj: TrytonObject, path: str, ids: list[int]) -> Iterator[Change]:
        """The rows of `obj` whose `path` is one of `ids`, paged by id."""
        fields = (*obj.read, "last_modified_at")
        domain = [*obj.domain, (path, "in", ids)]
        after = 0
        while True:
            rows = self.client.search_read(
                obj.model,
                [*domain, ("id", ">", after)],
                fields,
                limit=self.page_size,
                order=[("id", "ASC")],
                context=obj.context,
            )
            if obj.enrich is not None:
                obj.enrich(self.client, rows)
            for row in rows:
                yield self._change(obj, str(row["id"]), row["last_modified_at"], row)
            if len(rows) < self.page_size:
                return
            after = int(rows[-1]["id"])

    def _pages(
        self,
        model: str,
        domain: Domain,
        fields: tuple[str, ...],
        since: float | None,
        context: Mapping[str, Any],
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of the rows of `model` with stamp >= `since`, in (stamp, id) order, by keyset."""
        base = list(domain)
        if since is not None:
            base.append(("last_modified_at", ">=", from_us(since)))
        fields = (*fields, "last_modified_at")
        after: tuple[dt.datetime, int] | None = None
        while True:
            where = (
                base
                if after is None
                else [
                    *base,
                    [
                        "OR",
                        ("last_modified_at", ">", after[0]),
                        [("last_modified_at", "=", after[0]), ("id", ">", after[1])],
                    ],
                ]
            )
            rows = self.client.search_read(
                model, where, fields, limit=self.page_size, order=_ORDER, context=context
            )
            yield rows
            if len(rows) < self.page_size:
                return
            after = (rows[-1]["last_modified_at"], int(rows[-1]["id"]))

    def _change(self, obj: TrytonObject, key: str, stamp: dt.datetime, row: Row) -> Change:
        position = stamp.isoformat()
        when = stamp.replace(tzinfo=dt.UTC)
        try:
            record = obj.convert(row)
        except (KeyError, TypeError, ValueError, ArithmeticError) as e:
            raw = json.dumps(dict(row), default=str, sort_keys=True)
            problem = (
                f"{obj.model} {key} cannot be turned into a {obj.name} record "
                f"({type(e).__name__}: {e}); the Tryton modules may have changed"
            )
            return Change(obj.name, key, "upsert", None, position, when, error=problem, raw=raw)
        return Change(obj.name, key, "upsert", record, position, when)

    # -- checkpoints ------------------------------------------------------------------------

    def _load(self, checkpoint: JSON | None) -> dict[str, OverlapCursor]:
        saved: dict[str, Any] = {}
        if checkpoint is not None:
            try:
                if checkpoint["version"] != CHECKPOINT_VERSION:
                    raise ValueError(f"version {checkpoint['version']!r}")
                saved = dict(checkpoint["objects"])
            except (KeyError, TypeError, ValueError) as e:
                raise ConnectorError(
                    f"connector {self.system!r} (tryton): the stored checkpoint is not a tryton "
                    f"checkpoint version {CHECKPOINT_VERSION} ({e!r}); reset this connector's "
                    "checkpoint to read from the start"
                ) from None
        names = [o.name for o in self.objects]
        names += [_follow_name(o, path) for o in self.objects for path, _ in o.follow]
        return {name: OverlapCursor.from_json(saved.get(name), self.lag_us) for name in names}

    @staticmethod
    def _dump(cursors: Mapping[str, OverlapCursor]) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "objects": {name: c.to_json() for name, c in cursors.items()},
        }

    def _object(self, name: str) -> TrytonObject:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise ConnectorError(
            f"connector {self.system!r} (tryton) has no object {name!r}; its objects are "
            f"{[o.name for o in self.objects]}"
        )
