"""Performance helpers shared by bulk loops (rebuild, ingest)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
