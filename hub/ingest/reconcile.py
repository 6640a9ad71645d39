"""Reconciliation: hard deletes a source cannot report as changes, found by comparing key sets.

A source that can list the keys it holds now (`Source.current_keys`) lets the hub find records
that disappeared without a delete being captured: every stored record of the object that is
live (its head is not a deletion) and whose key is no longer listed gets a delete. An export
that is empty or truncated would wipe the canonical state that way, so a reconciliation that
would delete more than `reconcile_max_delete_ratio` of an object's live records is refused
(`ReconcileRefused`) unless forced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from hub.errors import SyncHubError
from hub.ingest.envelope import DELETED
from hub.spi import Source
from hub.store.base import EventStore
from hub.store.streams import source_stream
from hub.types import Change, ObjectSchema

__all__ = ["ReconcileRefused", "reconcile"]

RECONCILIATION = "reconciliation"
"""The position of a delete that reconciliation records."""


class ReconcileRefused(SyncHubError):
    """Reconciliation would delete too much at once."""


def reconcile(
    store: EventStore,
    system: str,
    source: Source,
    objects: Iterable[ObjectSchema],
    append: Callable[[list[Change]], int],
    *,
    max_delete_ratio: float,
    force: bool = False,
) -> int:
    """For each of `objects` whose current keys `source` lists, `append` a delete of every
    live stored record of `system` that is gone from the source (in key order); return how many were
    appended. Raises ReconcileRefused, before appending that object's deletes, when they would
    be more than `max_delete_ratio` of its live records, unless `force`."""
    total = 0
    for obj in objects:
        keys = source.current_keys(obj.object)
        if keys is None:
            continue
        gone, live = missing_keys(store, system, obj.object, keys)
        if not gone:
            continue
        check_plausible(system, obj.object, len(gone), live, max_delete_ratio, force)
        when = dt.datetime.now(dt.UTC)
        total += append(
            [
                Change(obj.object, key, "delete", None, position=RECONCILIATION, source_time=when)
                for key in gone
            ]
        )
    return total


def missing_keys(store: EventStore, system: str, obj: str, keys: set[str]) -> tuple[list[str], int]:
    """The keys of the live stored records of `system`/`obj` that are not among `keys`,
    sorted, and how many live records there are."""
    prefix = source_stream(system, obj, "")
    live = {
        s[len(prefix) :]
        for s, (_v, digest) in store.heads_by_prefix(prefix).items()
        if digest != DELETED
    }
    return sorted(live - keys), len(live)


def check_plausible(
    system: str, obj: str, gone: int, live: int, max_delete_ratio: float, force: bool
) -> None:
    """Raise ReconcileRefused if deleting `gone` of `live` records is more than the allowed
    share, unless `force`: an empty or truncated export must not wipe the canonical state."""
    ratio = gone / max(live, 1)
    if ratio > max_delete_ratio and not force:
        raise ReconcileRefused(
            f"reconciliation of {system}/{obj} would delete {gone} of {live} records "
            f"({ratio:.0%}), more than the allowed {max_delete_ratio:.0%}. If the source really "
            "lost them, run `synchub sync --once --reconcile-force`; otherwise check the export."
        )
