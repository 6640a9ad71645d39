"""Performance helpers shared by bulk loops (rebuild, ingest) and the hub's run loop."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

HANDOFF_SECONDS = 0.0002
"""The interpreter's thread switch interval while a bulk loop hands work to a helper thread."""


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (reference counting still frees
    memory); it is enabled again after the block if it was before.

    Bulk loops allocate millions of short-lived dicts and tuples without making cycles; the
    collector's generation-0 passes over them cost 5-10 % of a rebuild (measured with
    bench/rebuild.py) and free nothing. Re-entrant: an inner block leaves the GC as it found it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


FULL_GC_SECONDS = 600.0
"""How often a long-running loop lets the collector look at everything (GcBetweenPasses)."""


class GcBetweenPasses:
    """The cyclic collector's long passes kept out of a loop's passes (`synchub run`).

    A full collection walks every object the process holds (a hub's schemas, plans, caches):
    on PostgreSQL one took 211-240 ms in the middle of an ingest or a publish of
    bench/publish.py's loop at 1,000 changes/s, a quarter of a second added to every change
    then in flight. `between()`, called after each pass, collects the young generations and
    freezes what survives (gc.freeze: the automatic collections during the next pass walk only
    what that pass made); every `full_every` seconds it thaws and collects everything instead,
    so cyclic garbage is kept at most that long. The automatic collector stays on: a pass of
    millions of events is collected as it goes."""

    def __init__(self, full_every: float = FULL_GC_SECONDS) -> None:
        self.full_every = full_every
        self._thawed = time.monotonic()

    def __enter__(self) -> GcBetweenPasses:
        return self

    def __exit__(self, *exc: object) -> None:
        gc.unfreeze()

    def between(self) -> None:
        """After a pass that went through: young generations, or everything when due."""
        if time.monotonic() - self._thawed >= self.full_every:
            self.full()
        else:
            gc.collect(1)
            gc.freeze()

    def full(self) -> None:
        """Thaw and collect everything now (after a pass that failed halfway: the cycles of
        its traceback may hold connections or a read snapshot), then freeze again."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._thawed = time.monotonic()


@contextmanager
def quick_handoffs(seconds: float = HANDOFF_SECONDS) -> Iterator[None]:
    """Switch threads every `seconds` (not Python's default 5 ms) for the block, then restore.

    Ingest encodes on the main thread while SQLite inserts and commits on the commit thread.
    SQLite releases the GIL as it steps; taking it back waits until the busy main thread is
    asked to drop it, which with the default interval is up to 5 ms a statement: the commit
    thread then finished a batch after the next one was ready, and the main thread waited
    4-5 µs a change (bench/ingest.py: 13-15 µs a change at 5 ms, 9.3-10 µs at 0.2 ms)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


_M32 = 0xFFFFFFFF

BITS_PER_KEY = 12
"""Bits a KeyFilter gives each key of its capacity. Three probes into 12 bits a key answer
~1.0 % of absent keys wrongly at capacity (measured: tests/unit/test_tables.py), fewer than
the two probes into 16 bits before (~1.4 %) in 3/4 of the memory; the third probe costs
~40 ns a lookup."""


class KeyFilter:
    """A Bloom filter of hashable keys: `key in f` is always True for a key added, and False
    for all but ~1 % of the others up to `capacity` keys (three probes of the key's 64-bit
    hash into BITS_PER_KEY bits a key, no rounding: 1.5 MB a million keys, where a set of
    their hashes takes ~60 MB). Past its capacity it answers True more often, never wrongly
    False: `full` says when a holder should make a bigger one. Hashes are this process's own
    (str hashes are salted per process): a filter is never stored."""

    __slots__ = ("_bits", "_size", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(capacity, 1)
        """Keys it is sized for."""
        self._size = max(1 << 13, (self.capacity * BITS_PER_KEY + 7) & ~7)
        self._bits = bytearray(self._size >> 3)
        self.count = 0
        """Keys added that were not in it yet (an added key it already claimed, a false
        positive, is not counted: ~1 % fewer than the distinct keys)."""

    @property
    def full(self) -> bool:
        """Whether it holds more keys than it was sized for (its false-positive rate climbs)."""
        return self.count > self.capacity

    def add(self, key: object) -> None:
        h = hash(key)
        m, bits = self._size, self._bits
        # three indexes a + k·b (k = 0, 1, 2) of the hash's halves, each mapped into m bits by
        # a multiply-shift (no power-of-two size needed)
        a, b = h & _M32, (h >> 32) & _M32
        i = (a * m) >> 32
        j = (((a + b) & _M32) * m) >> 32
        k = (((a + 2 * b) & _M32) * m) >> 32
        bi, bj, bk = 1 << (i & 7), 1 << (j & 7), 1 << (k & 7)
        i, j, k = i >> 3, j >> 3, k >> 3
        if bits[i] & bi and bits[j] & bj and bits[k] & bk:
            return
        bits[i] |= bi
        bits[j] |= bj
        bits[k] |= bk
        self.count += 1

    def __contains__(self, key: object) -> bool:
        h = hash(key)
        m, bits = self._size, self._bits
        a, b = h & _M32, (h >> 32) & _M32
        i = (a * m) >> 32
        if not bits[i >> 3] & (1 << (i & 7)):
            return False
        j = (((a + b) & _M32) * m) >> 32
        if not bits[j >> 3] & (1 << (j & 7)):
            return False
        k = (((a + 2 * b) & _M32) * m) >> 32
        return bool(bits[k >> 3] & (1 << (k & 7)))
