"""The projector: keeps projections caught up, rebuilds them, and checksums them.

Catch-up reads pages of events after the tracked position and applies each page with the row
writes **and** the new tracked positions (the store's tracked positions) in one
transaction. Rebuild folds the whole log into fresh tables (`p_<name>__<gen>`), then, holding
the write lock, folds what arrived meanwhile and swaps the tables in: readers never see a
half-built projection.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from hub.canonical_schemas import BUILTIN, CanonicalSchemas
from hub.crashpoints import crashpoint
from hub.mapping import Mapping
from hub.perf import paused_gc
from hub.store.base import Cursor, Database, Dialect, EventStore
from projections.audit import AUDIT
from projections.backlog import BACKLOG, BACKLOG_OPEN
from projections.canonical import CANONICAL
from projections.exceptions import EXCEPTIONS
from projections.fold import Fold
from projections.links import LINKS
from projections.mappings import MAPPINGS
from projections.outbound import OUTBOUND
from projections.preview import canonical_diff, target_writes
from projections.source_records import SOURCE_RECORDS, WAITING
from projections.tables import PublishForm, Table
from projections.write_behind import WriteBehind

PROJECTIONS: dict[str, tuple[Table, ...]] = {
    "canonical": (CANONICAL, SOURCE_RECORDS, MAPPINGS, WAITING, LINKS),
    "audit": (AUDIT,),
    "exceptions": (EXCEPTIONS,),
    "outbound": (OUTBOUND,),
    "backlog": (BACKLOG, BACKLOG_OPEN),
}
"""Projection name → its tables (in checksum order). All are maintained by one fold (the
coordinator, fold.py); each tracks its position."""

ALL_TABLES: tuple[Table, ...] = tuple(t for ts in PROJECTIONS.values() for t in ts)
PAGE = 5000
CLAIM = "projections"
REBUILT = "rebuilt"
"""The tracking name whose position is the time (µs) of the last rebuild's swap: a reader of
the projections' history (hub.publish) knows by it that rows it read before may differ now."""
"""What a process claims (Database.claim) to apply events to the projections: one at a time."""
REPLAY_PAGE = 20_000
"""Events a rebuild reads at a time (catch-up reads `page`: one transaction each)."""
FLUSH = 50_000
"""Rows a rebuild holds before it hands them to its writer (in key order)."""
ANALYZE_AFTER = 20_000
"""Events one catch-up applies after which the projections' tables get fresh planner
statistics, where the database keeps them (Dialect.analyze): PostgreSQL's autovacuum comes a
minute or more after a bulk load, and meanwhile its plans assume the tables nearly empty (the
change feed read all the rest of the audit table for every batch of 5,000: 47 ms instead of
1.6 ms; the states before, 27 ms instead of 4.5 ms)."""
CHECK = 2_000
"""Events a rebuild applies between its checks for a flush: a row cache passes its limit by
at most the rows these put."""

Progress = Callable[[int, int], None]
"""Called with (events done, events total)."""


class Preview(NamedTuple):
    """What deploying a candidate mapping would change (Projector.dry_run)."""

    differences: list[dict[str, Any]]
    """Canonical fields: canonical_id, field, old, new, change (added/removed/changed)."""
    writes: list[dict[str, Any]]
    """Target records: target, object, canonical_id, op, fields {name: [now, would be]}."""


class Projector:
    """Catches the projections up with the store; one per process. Projection tables written by
    an older synchub (other columns) are rebuilt when the projector starts."""

    def __init__(
        self,
        store: EventStore,
        page: int = PAGE,
        *,
        progress: Progress | None = None,
        publish_form: PublishForm | None = None,
    ) -> None:
        """`progress` reports the rebuild of outdated tables, when there is one;
        `publish_form`: catch-ups make each change's published form as they record it (when
        the store is published to Kafka: the publisher then only sends it; a rebuild does not,
        the publisher reconciles after one)."""
        self.store = store
        self.page = page
        with store.db.transaction(commit=True) as c:
            for table in ALL_TABLES:
                table.create(c, store.db.dialect)
            outdated = _outdated(c, store.db.dialect)
        self.fold = Fold(
            lambda name: f"p_{name}", _decoder(store), store.db.dialect, publish_form=publish_form
        )
        self._last = -1
        self.upgraded = outdated
        """The live tables that were of an older synchub and were rebuilt on start."""
        if outdated:  # tables of an older synchub: they are derived, so rebuild them
            self.rebuild(progress=progress)
        else:
            self._reload()

    def forget(self) -> None:
        """Reload the fold's state before the next catch-up (after a failure elsewhere)."""
        self._last = -1

    def _reload(self) -> None:
        """Forget cached rows and reload the fold's state from the tables (if that fails, the
        next catch-up reloads first)."""
        self._last = -1
        self.fold.discard()
        with self.store.db.transaction(commit=False) as c:
            self.fold.load(c)
        self._last = self.position()

    # -- positions ------------------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        """Tracked position of each projection."""
        return {name: self.store.db.tracked(name) for name in PROJECTIONS}

    def position(self) -> int:
        return min(self.positions().values())

    # -- catch-up -------------------------------------------------------------------------------

    def catch_up(self, upto: int | None = None, progress: Progress | None = None) -> int:
        """Apply every event after the tracked position (up to `upto`); return events applied."""
        start = self.position()
        if start != self._last:  # another process moved the projections: drop cached rows
            self._reload()
        head = self.store.head() if upto is None else upto
        done = 0
        after = start
        db = self.store.db
        while after < head:
            events = self.store.read(after, head, self.page)
            if not events:
                break
            last = events[-1].position
            try:
                with db.transaction(commit=True) as c:
                    db.claim(c, CLAIM)
                    moved = min(db.tracked_in(c, name) for name in PROJECTIONS)
                    if moved != after:  # another process applied them: go on from there
                        raise _Moved(moved)
                    self.fold.apply(c, events)
                    self.fold.flush(c)
                    for name in PROJECTIONS:
                        db.track(c, name, last)
                    crashpoint("projection.before_commit")
            except _Moved as m:
                self._reload()
                after = m.position
                continue
            except BaseException:
                self._reload()
                raise
            done += len(events)
            after = last
            self._last = last
            if progress is not None:
                progress(after - start, head - start)
        if done >= ANALYZE_AFTER:
            self.analyze()
        return done

    def analyze(self, gen: str = "") -> None:
        """Refresh the planner statistics of the projections' tables (of generation `gen`; the
        live ones by default), where the database keeps them (Dialect.analyze)."""
        statement = self.store.db.dialect.analyze
        if not statement:
            return
        with self.store.db.transaction(commit=True) as c:
            for table in ALL_TABLES:
                c.execute(statement.format(table=table.physical(gen)))

    # -- rebuild --------------------------------------------------------------------------------

    def rebuild(self, names: Iterable[str] | None = None, progress: Progress | None = None) -> int:
        """Replay the whole log into fresh tables, then swap in those of `names` (default all)."""
        chosen = list(PROJECTIONS) if names is None else list(names)
        unknown = [n for n in chosen if n not in PROJECTIONS]
        if unknown:
            raise ValueError(
                f"unknown projection {', '.join(unknown)}; choose from {', '.join(PROJECTIONS)}"
            )
        gen = f"g{time.time_ns()}"
        self.fold.discard()  # the live fold's cached rows: reloaded after the swap
        fold = self._fresh_fold(gen, drop_stale=True)
        try:
            after = self._replay(fold, self.store.head(), progress)
            self.analyze(gen)  # the statistics go with the tables through their renaming
            with self.store.db.transaction(commit=True) as c:
                # Take the write lock first (a no-op write), so no append can slip in before
                # the swap; then fold what arrived meanwhile and swap.
                self.store.db.lock(c)
                self.store.db.claim(c, CLAIM)  # and no catch-up of another process
                while True:
                    events = self.store.read_in(c, after, limit=self.page)
                    if not events:
                        break
                    fold.apply(c, events)
                    fold.flush(c)
                    after = events[-1].position
                with self.store.db.views_kept(c):  # BI views over the tables (bi_views)
                    for name in chosen:
                        for table in PROJECTIONS[name]:
                            live = table.physical()
                            c.execute(f"DROP TABLE IF EXISTS {live}")
                            c.execute(f"ALTER TABLE {table.physical(gen)} RENAME TO {live}")
                        self.store.db.track(c, name, after)
                    self.store.db.track(c, REBUILT, time.time_ns() // 1000)
                _drop_stale_generations(c, self.store.db.dialect)
        except BaseException:
            with self.store.db.transaction(commit=True) as c:
                _drop_stale_generations(c, self.store.db.dialect)
            raise
        self._reload()
        return after

    def preview(
        self,
        candidate: Mapping,
        progress: Progress | None = None,
        schemas: CanonicalSchemas = BUILTIN,
    ) -> list[dict[str, Any]]:
        """What the canonical state would be under `candidate`, deployed now: the field-level
        differences from the live state (see preview.canonical_diff)."""
        return self.dry_run(candidate, progress, schemas).differences

    def dry_run(
        self,
        candidate: Mapping,
        progress: Progress | None = None,
        schemas: CanonicalSchemas = BUILTIN,
    ) -> Preview:
        """What deploying `candidate` (with the canonical `schemas`) now would change:
        canonical fields, and the records each target would be written (see
        preview.target_writes). Replays into scratch tables; changes nothing."""
        self.catch_up()
        gen = f"preview{time.time_ns()}"
        fold = self._fresh_fold(gen)
        try:
            after = self._replay(fold, self.position(), progress)
            with self.store.db.transaction(commit=True) as c:
                fold.deploy(c, candidate, after, schemas=schemas)
                fold.flush(c)
                live, scratch = CANONICAL.physical(), CANONICAL.physical(gen)
                return Preview(
                    canonical_diff(c, live, scratch),
                    target_writes(
                        c,
                        (live, self.fold.mapping, self.fold.bind(c)),
                        (scratch, candidate, fold.bind(c)),
                    ),
                )
        finally:
            with self.store.db.transaction(commit=True) as c:
                for table in ALL_TABLES:
                    c.execute(f"DROP TABLE IF EXISTS {table.physical(gen)}")

    def _fresh_fold(self, gen: str, *, drop_stale: bool = False) -> Fold:
        """A fold over fresh tables of generation `gen` (created now; `drop_stale`: first drop
        the tables of rebuilds that never finished)."""
        with self.store.db.transaction(commit=True) as c:
            if drop_stale:
                _drop_stale_generations(c, self.store.db.dialect)
            for table in ALL_TABLES:
                table.create(c, self.store.db.dialect, gen)
        return Fold(
            lambda name: f"p_{name}__{gen}",
            _decoder(self.store),
            self.store.db.dialect,
            fresh=True,
        )

    def _replay(self, fold: Fold, head: int, progress: Progress | None) -> int:
        """Fold every event up to `head` into `fold`'s fresh tables. The rows are written in
        batches of FLUSH rows (fewer when a row cache is full), in key order, by a write-behind
        thread (write_behind.py) on a scratch session, while the fold goes on; on return every
        row is committed."""
        after = 0
        db = self.store.db
        with db.scratch_session() as session, db.scratch_session() as reads, paused_gc():
            writer = WriteBehind(session, reads)
            try:
                fold.expect(head)
                c = writer.cursor()
                while after < head:
                    events = self.store.read(after, head, REPLAY_PAGE)
                    if not events:
                        break
                    for i in range(0, len(events), CHECK):
                        fold.apply(c, events[i : i + CHECK])
                        if fold.unwritten() >= FLUSH or fold.full():
                            fold.flush(c)
                    after = events[-1].position
                    if progress is not None:
                        progress(after, head)
                fold.flush(c)
            except BaseException:
                writer.abort()  # what is queued is of no use: the fresh tables are dropped
                raise
            writer.close()
        return after

    # -- checksum -------------------------------------------------------------------------------

    def checksums(self) -> dict[str, str]:
        """SHA-256 of every projection's rows in primary-key order (equal after a rebuild)."""
        return checksums(self.store.db)


def checksums(db: Database) -> dict[str, str]:
    """SHA-256 of every projection's rows in primary-key order, in `db` (equal after a rebuild,
    and on every backend for the same events)."""
    out = {}
    with db.transaction(commit=False) as c:
        for name, tables in PROJECTIONS.items():
            h = hashlib.sha256()
            for table in tables:
                h.update(table.name.encode())
                c.execute(
                    f"SELECT {', '.join(table.content_names)} FROM {table.physical()}"
                    f" ORDER BY {', '.join(table.pk)}"
                )
                for row in c:  # streamed: whole tables never sit in memory
                    h.update(repr(tuple(row)).encode())
            out[name] = h.hexdigest()
    return out


def caught_up(db: Database, head: int) -> bool:
    """Whether every projection in `db` is tracked at `head` (read only)."""
    return all(db.tracked(name) == head for name in PROJECTIONS)


class _Moved(Exception):
    """The projections were moved on by another process (to `position`) meanwhile."""

    def __init__(self, position: int) -> None:
        self.position = position


def _decoder(store: EventStore) -> Callable[[bytes], Any]:
    """How the fold decodes payloads: the envelope's timestamps as integer microseconds (as
    the tables keep them; no datetime built to be converted back), the captured record as
    `decode` gives it."""
    return functools.partial(store.codec.decode_raw, nested=False)


def _outdated(c: Cursor, dialect: Dialect) -> list[str]:
    """Live projection tables whose columns differ from their definition (made by an older
    synchub version); the fold cannot write to them until they are rebuilt."""
    stale = []
    for table in ALL_TABLES:
        c.execute(dialect.table_columns, (table.physical(),))
        have = [r[0] for r in c.fetchall()]
        if have != table.column_names and not table.add_derived(c, dialect, have):
            stale.append(table.physical())
    return stale


def _drop_stale_generations(c: Cursor, dialect: Dialect) -> None:
    """Drop the tables of rebuilds that never finished (`p_<name>__g<gen>`)."""
    c.execute(dialect.tables_like, ("p\\_%\\_\\_g%",))
    for (name,) in c.fetchall():
        c.execute(f"DROP TABLE IF EXISTS {name}")
