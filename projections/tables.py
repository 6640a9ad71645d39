"""Table definitions, physical names per generation, a write-back row cache, and the context the
projections of one fold share.

Every projection table has a logical name (e.g. `canonical`); its physical name is
`p_<name>` for the live generation and `p_<name>__<gen>` while a rebuild fills a fresh one.
SQL that differs per database comes from the store's Dialect (hub.store.base).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hub.canonical_schemas import CanonicalSchemas
from hub.perf import KeyFilter
from hub.store.base import Cursor, Dialect, StoredEvent
from hub.store.rows import MultiRowInsert

PublishForm = Callable[
    [CanonicalSchemas, str, str, str, int, "dict[str, Any] | None", "dict[str, Any] | None",
     list[str]],
    "tuple[bytes, int, bytes] | None",
]  # fmt: skip
"""`form(schemas, canonical_id, entity, op, position, before, after, changed)`: a change's
published form under the canonical `schemas` deployed — its Avro change body, the length of the
state body it ends with (-1: no state after) and what it was made under (8 bytes:
hub.publish.batch_encoder.form_id) — or None when it cannot be made (the reader makes it then).
Given to the Projector by whoever publishes (hub.publish.batch_encoder.PublishForm)."""


@dataclass(frozen=True, slots=True)
class Table:
    """One projection table: column DDL, primary key, secondary indexes.

    Indexes are named after the table they were made with (`<physical>_<columns>`): a table
    a rebuild filled keeps the names of its generation after the swap, and `create` finds
    existing indexes by their columns, not their names.
    Tables are clustered on their primary key where the database can (the dialect's
    `clustered` suffix; SQLite's WITHOUT ROWID): one B-tree per row, not two.
    """

    name: str
    columns: tuple[str, ...]
    pk: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    derived: tuple[str, ...] = ()
    """Columns that keep a form of the row's content made for a reader (the audit's published
    form): not part of the projection's content, so not in its checksum."""

    @property
    def column_names(self) -> list[str]:
        return [c.split()[0] for c in self.columns]

    @property
    def content_names(self) -> list[str]:
        """The columns of the projection's content (all but the derived ones)."""
        return [c for c in self.column_names if c not in self.derived]

    def add_derived(self, c: Cursor, dialect: Dialect, have: list[str]) -> bool:
        """Add the derived columns a live table made by an older synchub lacks, when that is
        all it lacks (they are the last ones): no rebuild for them. False: other columns
        differ."""
        names = self.column_names
        missing = names[len(have) :]
        if not have or have != names[: len(have)] or not set(missing) <= set(self.derived):
            return False
        for name in missing:
            ddl = self.columns[names.index(name)]
            c.execute(f"ALTER TABLE {self.physical()} ADD COLUMN {dialect.column(ddl)}")
        return True

    def physical(self, generation: str = "") -> str:
        return f"p_{self.name}__{generation}" if generation else f"p_{self.name}"

    def create(self, c: Cursor, dialect: Dialect, generation: str = "") -> None:
        """Create the table, and each of its indexes that it does not have yet."""
        t = self.physical(generation)
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t} ({', '.join(map(dialect.column, self.columns))},"
            f" PRIMARY KEY ({', '.join(self.pk)})){dialect.clustered}"
        )
        c.execute(dialect.index_columns, (t,))
        existing: dict[str, list[str]] = {}
        for index, column in c.fetchall():
            existing.setdefault(index, []).append(column)
        have = {tuple(cols) for cols in existing.values()}
        for cols in self.indexes:
            if tuple(cols) not in have:
                c.execute(f"CREATE INDEX {t}_{'_'.join(cols)} ON {t} ({', '.join(cols)})")


SCAN_AFTER = 200
"""Misses of a row cache after which it reads every key of its table once, where queries are
round trips (RowCache._start_scan). Each miss before the scan ends is a round trip: at 2,000,
a fresh process at 1,000 new records/s paid them for ≈ 2 s before its scan even began (the
latency loop of bench/publish.py on PostgreSQL: p99 257-995 ms over three runs; at 200:
226 and 273 ms)."""

_KEY_PAGE = 5_000
"""Keys a scan of RowCache.know_all reads per flush (5-40 ms on PostgreSQL, the links'
three-column keys the slowest): a big table's scan is spread over the catch-ups that follow
(a scan of 100k keys of three tables at once held one catch-up for ≈ 0.5 s, 10,000 keys a
flush up to 250 ms, 5,000 up to 160 ms: bench/publish.py's latency loop)."""

_DRAIN_STEP = 10_000
"""Keys of a dropped generation a complete cache adds to its filter per flush (≈ 15 ms; the
50k of a whole generation at once held a catch-up for 75-110 ms)."""

LIMIT = 100_000
"""Rows a RowCache holds by default (two generations of half each). A row of the big tables
takes 0.6-0.9 KB in memory (measured with tracemalloc in bench/scale.py: ≈ 2.4 KB an entity
over canonical, links and source_records), so the three hold ≈ 240 MB at this cap (≈ 340 MB
at 150k before). At 40k (≈ 100 MB) a rebuild of 100k events was 15 % slower (its updates
missed the cache: a read-back each); at 100k it is not (bench/rebuild.py, ratio 0.28). Once
a log has millions of entities, updates of old ones miss either way (a hit is ≈ limit /
entities)."""

_MIN_KEYS = 65_536
"""The least a filter of RowCache.know_all is sized for (96 KB)."""

_MAX_PARAMETERS = 32_766
"""Parameters one statement may have (SQLite's limit since 3.32; PostgreSQL allows 65,535)."""


class RowCache:
    """Rows of one table by primary key, loaded on demand, written back in key order.

    `get` returns a dict (the row) or None; `put` marks a row dirty; `flush` upserts the dirty
    rows sorted by primary key (with the dialect's upsert, in multi-row statements): B-tree
    pages are then filled in order, each touched once per flush.
    Rows stay cached across flushes in two generations of up to `limit` / 2 rows: when the
    current one is `full` at a flush it becomes the previous one, and the previous one is
    dropped (the caller flushes once any cache is full, so `limit` is passed by at most the
    rows put between two such checks). A row read back from the table after its generation was dropped waits only for
    the writes handed over before that generation was made (`read_after` of a write-behind
    cursor, write_behind.py), which are long done: never for the latest ones.
    `complete=True` promises that every row of the table went through this cache (a fresh
    table being rebuilt): a miss is then an absent row, without a SELECT. A complete cache
    keeps the keys of the rows it dropped in a Bloom filter (`capacity` keys at its sized
    rate), so a later miss costs a SELECT only for such a key (or a false positive); the others
    are still known absent. A cache made complete by `know_all` reads the table's keys again
    into a bigger filter when the keys of the rows it dropped have filled it.
    """

    def __init__(
        self,
        table: Table,
        physical: str,
        dialect: Dialect,
        limit: int = LIMIT,
        *,
        complete: bool = False,
    ) -> None:
        self.table = table
        self.physical = physical
        self.limit = limit
        self.complete = complete
        self.capacity = 1_000_000
        """How many dropped keys the filter of a fresh table is sized for (set before it is
        made: Fold.expect)."""
        self.dropped: KeyFilter | None = None
        self._scanned = False
        """Whether `dropped` was made by know_all (then it is made again when full)."""
        self._scan: tuple[KeyFilter, tuple[Any, ...] | None] | None = None
        """A scan of the table's keys under way: the filter it fills, the last key read."""
        self._draining: dict[Any, None] = {}
        """The keys of a dropped generation's rows, going into the filters _DRAIN_STEP per
        flush (until then they may exist: a miss on one reads the table). Keys only: the
        rows themselves are freed when their generation is dropped."""
        self._drain: Iterator[Any] | None = None
        self.cols = table.column_names
        self._values = operator.itemgetter(*self.cols)
        self.rows: dict[Any, dict[str, Any] | None] = {}
        self.dirty: set[Any] = set()
        self._previous: dict[Any, dict[str, Any] | None] = {}
        self._previous_mark: int | None = None
        self._dropped_mark: int | None = None
        where = " AND ".join(f"{k}=?" for k in table.pk)
        self._select = f"SELECT {', '.join(self.cols)} FROM {physical} WHERE {where}"
        head, tail = dialect.upsert_statement(physical, self.cols, table.pk)
        self._upsert = MultiRowInsert(
            head, len(self.cols), max_rows=_MAX_PARAMETERS // len(self.cols), tail=tail
        )
        self._delete = f"DELETE FROM {physical} WHERE {where}"
        pk = ", ".join(table.pk)
        marks = ", ".join("?" * len(table.pk))
        self._keys_first = f"SELECT {pk} FROM {physical} ORDER BY {pk} LIMIT {_KEY_PAGE}"
        self._keys_after = (
            f"SELECT {pk} FROM {physical} WHERE ({pk}) > ({marks}) ORDER BY {pk} LIMIT {_KEY_PAGE}"
        )
        self._count = f"SELECT count(*) FROM {physical}"
        self.misses = 0
        self.scan_after = SCAN_AFTER if dialect.round_trips else 0
        """Misses after which the cache reads every key once (`know_all`); 0: never."""

    def __len__(self) -> int:
        """How many rows are cached."""
        return len(self.rows) + len(self._previous)

    @property
    def full(self) -> bool:
        """Whether the current generation is full: the next flush makes it the previous one."""
        return len(self.rows) > self.limit // 2

    def get(self, c: Cursor, key: Any) -> dict[str, Any] | None:
        rows = self.rows
        if key in rows:
            return rows[key]
        previous = self._previous
        if key in previous:
            return previous[key]
        if (
            self.complete
            and (self.dropped is None or key not in self.dropped)
            and key not in self._draining
        ):
            return None
        self.misses += 1
        if self.misses == self.scan_after and not self.complete and self._scan is None:
            self._start_scan(c)  # a small table is read at once; a big one over the flushes
            if self.complete and self.dropped is not None and key not in self.dropped:
                return None
        params = key if isinstance(key, tuple) else (key,)
        read_after = getattr(c, "read_after", None)
        if read_after is not None and self._dropped_mark is not None:
            r = read_after(self._dropped_mark, self._select, params).fetchone()
        else:
            c.execute(self._select, params)
            r = c.fetchone()
        row = None if r is None else dict(zip(self.cols, r, strict=True))
        rows[key] = row
        return row

    def know_all(self, c: Cursor) -> None:
        """Read every key of the table into the filter of keys that may exist, now: a miss on
        any other key is then known absent, without a query (_start_scan does it over the
        flushes that follow)."""
        self._start_scan(c)
        while self._scan is not None:
            self._scan_step(c)

    def _start_scan(self, c: Cursor) -> None:
        """Begin reading every key of the table into a new filter, _KEY_PAGE keys per flush
        (the first page now). Where a query is a round trip (PostgreSQL: ≈ 250 µs each,
        measured, 1.8 of them an event in a catch-up of new records), a catch-up that misses
        `scan_after` times does this once, and again whenever the keys it dropped since have
        filled the filter. Sized for twice the rows, the filter takes 3 bytes a row or less,
        and the scans read each row about twice in all, however the table grows. Until the
        scan ends, misses read the table (or the filter of the last scan answers them)."""
        c.execute(self._count)
        rows = int(c.fetchone()[0])
        self._scan = (KeyFilter(max(_MIN_KEYS, 2 * rows)), None)
        self._scan_step(c)

    def _scan_step(self, c: Cursor) -> None:
        """One page of the scan (by key: the table never whole in memory); at its end the
        filter also takes the keys only cached so far, and answers from then on."""
        assert self._scan is not None
        known, last = self._scan
        if last is None:
            c.execute(self._keys_first)
        else:
            c.execute(self._keys_after, last)
        page = c.fetchall()
        add, single = known.add, len(self.table.pk) == 1
        for row in page:
            add(row[0] if single else tuple(row))
        if len(page) == _KEY_PAGE:
            self._scan = (known, tuple(page[-1]))
            return
        for key in self._draining:
            add(key)
        for generation in (self._previous, self.rows):
            for key, row in generation.items():  # rows cached but maybe not flushed yet
                if row is not None:
                    add(key)
        self._draining, self._drain = {}, None
        self._scan = None
        self.dropped = known
        self.complete = True
        self._scanned = True

    def put(self, key: Any, row: dict[str, Any] | None) -> None:
        """Store `row` under `key`; None deletes the row at the next flush."""
        self.rows[key] = row
        self.dirty.add(key)

    def flush(self, c: Cursor) -> None:
        if self.dirty:
            rows, values = self.rows, self._values
            keys = sorted(self.dirty)
            upserts = [values(row) for key in keys if (row := rows[key]) is not None]
            if len(upserts) < len(keys):
                deletes = [k if isinstance(k, tuple) else (k,) for k in keys if rows[k] is None]
                c.executemany(self._delete, deletes)
            if upserts:
                self._upsert.run(c, upserts)
            self.dirty.clear()
        if self.full:
            self._rotate(c)
        if self._drain is not None:
            self._drain_step(c)
        if self._scan is not None:
            self._scan_step(c)

    def _rotate(self, c: Cursor) -> None:
        """The current generation (all written) becomes the previous one; the previous one is
        dropped: the keys of its rows go to the filter of a complete cache and to that of a
        scan under way, _DRAIN_STEP per flush (_drain_step)."""
        if self._previous:
            if self.complete or self._scan is not None:
                if self.complete and self.dropped is None:
                    self.dropped = KeyFilter(self.capacity)
                if self._drain is not None:  # the last one's rest first (rare)
                    self._drain_step(c, everything=True)
                self._draining = {k: None for k, row in self._previous.items() if row is not None}
                self._drain = iter(self._draining)
            self._dropped_mark = self._previous_mark
        mark = getattr(c, "mark", None)
        self._previous_mark = mark() if mark is not None else None
        self._previous = self.rows
        self.rows = {}

    def _drain_step(self, c: Cursor, *, everything: bool = False) -> None:
        """Add _DRAIN_STEP keys of the dropped generation to the filters (or all of them);
        once all are in, a filter a scan made and that is now full is made again."""
        limit = None if everything else _DRAIN_STEP
        assert self._drain is not None
        filters = [self.dropped] if self.complete and self.dropped is not None else []
        if self._scan is not None:
            filters.append(self._scan[0])
        for taken, key in enumerate(self._drain, 1):
            for f in filters:
                f.add(key)
            if limit is not None and taken >= limit:
                return
        self._draining, self._drain = {}, None
        if self._scanned and self.dropped is not None and self.dropped.full and not self._scan:
            self._start_scan(c)

    def discard(self) -> None:
        """Forget everything (after a rolled-back transaction)."""
        self.rows.clear()
        self.dirty.clear()
        self._previous = {}
        self.dropped = None
        self._scanned = False
        self._scan, self._draining, self._drain = None, {}, None
        self._previous_mark = self._dropped_mark = None
        self.complete = False
        self.misses = 0


class Context:
    """What the projections of one fold share: where their tables are (the generation's
    physical names), the database's dialect, whether the tables are fresh (a rebuild), and the
    event being applied: its cursor, position, and the audit sequence within it."""

    __slots__ = ("c", "caches", "dialect", "fresh", "physical", "position", "publish_form", "seq")

    def __init__(self, physical: Callable[[str], str], dialect: Dialect, *, fresh: bool) -> None:
        self.physical = physical
        self.dialect = dialect
        self.fresh = fresh
        self.c: Cursor | None = None
        self.caches: list[RowCache] = []
        """Every row cache made for this fold."""
        self.position = 0
        self.seq = 0
        self.publish_form: PublishForm | None = None
        """Makes each change's published form as the audit records it (PublishForm above)."""

    def cache(self, table: Table) -> RowCache:
        """A write-back cache of `table` in this fold's generation (see RowCache `complete`)."""
        cache = RowCache(table, self.physical(table.name), self.dialect, complete=self.fresh)
        self.caches.append(cache)
        return cache

    def table(self, table: Table) -> str:
        """The physical name of `table` in this fold's generation."""
        return self.physical(table.name)


Handler = Callable[[StoredEvent, Any], None]
"""What a projection does with one event: called with the event and its decoded payload."""
