"""Performance helpers shared by bulk loops (rebuild, ingest)."""

from __future__ import annotations

import gc
import sys
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


class KeyFilter:
    """A Bloom filter of hashable keys: `key in f` is always True for a key added, and False
    for all but ~1.4 % of the others at the sized capacity (two probes of the key's hash into
    16 bits a key: 2 MB a million keys, where a set of their hashes takes ~60 MB). Past its
    capacity it answers True more often, never wrongly False. Hashes are this process's own
    (str hashes are salted per process): a filter is never stored."""

    __slots__ = ("_bits", "_mask")

    def __init__(self, capacity: int) -> None:
        size = 1 << max(13, (max(capacity, 1) * 16 - 1).bit_length())
        self._bits = bytearray(size >> 3)
        self._mask = size - 1

    def add(self, key: object) -> None:
        h = hash(key)
        mask, bits = self._mask, self._bits
        i, j = h & mask, (h >> 32) & mask
        bits[i >> 3] |= 1 << (i & 7)
        bits[j >> 3] |= 1 << (j & 7)

    def __contains__(self, key: object) -> bool:
        h = hash(key)
        mask, bits = self._mask, self._bits
        i, j = h & mask, (h >> 32) & mask
        return bool(bits[i >> 3] & (1 << (i & 7))) and bool(bits[j >> 3] & (1 << (j & 7)))
