"""GcBetweenPasses: the young generations collected and the survivors frozen between passes,
everything collected every `full_every` seconds, nothing left frozen after the loop."""

from __future__ import annotations

import gc
import weakref

from hub.perf import GcBetweenPasses


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_a_cycle_made_in_a_pass_is_collected_after_it_and_survivors_are_frozen() -> None:
    with GcBetweenPasses(full_every=3600) as collector:
        collector.between()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        node = Node()
        gone = weakref.ref(node)
        del node
        collector.between()  # made since the last freeze: young, collected
        assert gone() is None
        kept = Node()
        collector.between()
        assert gc.get_freeze_count() > frozen  # the survivor is frozen now
        assert gc.is_tracked(kept)
    assert gc.get_freeze_count() == 0


def test_frozen_garbage_is_collected_at_the_next_full_collection() -> None:
    with GcBetweenPasses(full_every=3600) as collector:
        node = Node()
        gone = weakref.ref(node)
        collector.between()  # alive: frozen
        del node
        collector.between()
        assert gone() is not None  # frozen garbage waits for the full collection
        collector.full_every = 0
        collector.between()
        assert gone() is None
    assert gc.get_freeze_count() == 0


def test_full_collects_frozen_garbage_at_once() -> None:
    with GcBetweenPasses(full_every=3600) as collector:
        node = Node()
        gone = weakref.ref(node)
        collector.between()
        del node
        collector.full()  # what the run loop does after a failed pass
        assert gone() is None
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
