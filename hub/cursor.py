"""A polling cursor that survives sources which commit late.

Many APIs stamp a row with the time its transaction *started* (Tryton's write_date) or took a
timestamp before taking a lock (TimeTagger's `st`), so a row can become visible with a stamp
older than the newest one already read. A strict `> high-water mark` poll loses such rows.

`OverlapCursor` re-reads a window of `lag` below the high-water mark on every poll and drops
what it has already seen, by (key, version) pairs remembered only inside that window: the state
stays bounded by the number of changes in one window, not by history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class OverlapCursor:
    """High-water mark + overlap window + de-duplication inside the window.

    Usage per poll: `since = cursor.since()`; fetch rows with stamp >= since; for each row
    `if cursor.admit(key, version, stamp): emit(row)`; then `cursor.to_json()` is the checkpoint.
    Stamps are numbers (e.g. epoch seconds); `version` is whatever changes on every write of a
    row (a modification stamp, a revision number). A poll whose rows are checkpointed in
    several batches must admit them in stamp order: each checkpoint's high-water mark is the
    largest stamp admitted so far, so a row with an older stamp still to come after it (beyond
    the window) would be skipped after a restart. The Tryton and TimeTagger sources sort.
    """

    lag: float
    high: float | None = None
    seen: dict[str, tuple[str, float]] = field(default_factory=dict)

    def since(self) -> float | None:
        """Lower bound (inclusive) of the next query; None means read everything."""
        return None if self.high is None else self.high - self.lag

    def admit(self, key: str, version: str, stamp: float) -> bool:
        """True if (key, version) is new; records it and moves the high-water mark."""
        previous = self.seen.get(key)  # None for a key not seen: no version, not even "", equals it
        if previous is not None and previous[0] == version:
            return False
        self.seen[key] = (version, stamp)
        if self.high is None or stamp > self.high:
            self.high = stamp
        return True

    def prune(self) -> None:
        """Forget what fell out of the window (call once per poll, after admitting)."""
        floor = self.since()
        if floor is not None:
            self.seen = {k: v for k, v in self.seen.items() if v[1] >= floor}

    def to_json(self) -> dict[str, Any]:
        self.prune()
        return {
            "lag": self.lag,
            "high": self.high,
            "seen": {k: list(v) for k, v in self.seen.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, lag: float) -> OverlapCursor:
        if not data:
            return cls(lag=lag)
        seen = {k: (str(v[0]), float(v[1])) for k, v in data.get("seen", {}).items()}
        return cls(lag=lag, high=data.get("high"), seen=seen)
