"""Performance helpers shared by bulk loops (rebuild, ingest)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (reference counting still frees
    memory), and run one collection after it when it was enabled.

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
