"""The overlap cursor: late commits inside the window are captured exactly once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.cursor import OverlapCursor


def poll(rows: list[tuple[str, str, float]], cursor: OverlapCursor) -> list[tuple[str, str]]:
    since = cursor.since()
    out = []
    for key, version, stamp in sorted(rows, key=lambda r: r[2]):
        if since is not None and stamp < since:
            continue
        if cursor.admit(key, version, stamp):
            out.append((key, version))
    cursor.prune()
    return out


@settings(max_examples=300)
@given(
    writes=st.lists(
        st.tuples(st.integers(0, 15), st.floats(0, 100), st.floats(0, 5)), min_size=1, max_size=50
    ),
    poll_times=st.lists(st.floats(0, 110), min_size=1, max_size=12),
)
def test_late_commits_within_the_lag_are_seen_exactly_once(writes, poll_times) -> None:
    """Write i of key k is stamped s_i and commits (becomes visible) at s_i + delay_i, with
    delay ≤ lag — the API stamps rows with their transaction start. Polls happen at arbitrary
    times, see the latest committed version of each key, and resume from the JSON checkpoint.
    Every key's final version is captured, and no (key, version) twice."""
    lag = 5.0
    checkpoint = None
    seen: list[tuple[str, str]] = []
    for now in [*sorted(poll_times), 1000000000.0]:
        latest: dict[str, tuple[str, str, float]] = {}
        for i, (key, stamp, delay) in sorted(enumerate(writes), key=lambda w: w[1][1] + w[1][2]):
            if stamp + delay <= now:
                latest[f"k{key}"] = (f"k{key}", f"v{i}", stamp)
        cursor = OverlapCursor.from_json(checkpoint, lag)
        seen += poll(list(latest.values()), cursor)
        checkpoint = cursor.to_json()
    final: dict[str, str] = {}
    for i, (key, _stamp, _delay) in sorted(enumerate(writes), key=lambda w: w[1][1] + w[1][2]):
        final[f"k{key}"] = f"v{i}"
    assert len(seen) == len(set(seen))
    for key, version in final.items():
        assert (key, version) in seen


def test_state_is_bounded_by_the_window() -> None:
    cursor = OverlapCursor(lag=10)
    for i in range(10_000):
        cursor.admit(f"k{i}", "1", float(i))
    cursor.prune()
    assert len(cursor.seen) <= 11
    restored = OverlapCursor.from_json(cursor.to_json(), 10)
    assert restored.high == cursor.high and restored.seen == cursor.seen
    assert not restored.admit("k9999", "1", 9999.0)
    assert restored.admit("k9999", "2", 9999.5)


def test_an_empty_version_of_a_key_never_seen_is_admitted_once() -> None:
    """A row whose version is the empty string is a row like any other: admitted the first
    time, dropped when read again, also after the checkpoint's round trip."""
    cursor = OverlapCursor(lag=10)
    assert cursor.admit("k1", "", 5.0) is True
    assert cursor.high == 5.0
    assert cursor.admit("k1", "", 5.0) is False
    restored = OverlapCursor.from_json(cursor.to_json(), 10)
    assert restored.admit("k1", "", 5.0) is False
    assert restored.admit("k1", "2", 6.0) is True
    assert restored.admit("k2", "", 6.0) is True
