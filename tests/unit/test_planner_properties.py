"""Property tests of delta planning: minimal, ownership-respecting, convergent, idempotent keys."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.outbound.planner import idempotency_key, minimal_delta
from hub.spi import same_value

FIELDS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.text(max_size=3)
    | st.floats(allow_nan=False, width=32)
)
STATES = st.dictionaries(FIELDS, VALUES, max_size=6)


@given(desired=STATES, known=st.none() | STATES, owned=st.sets(FIELDS))
def test_applying_the_delta_makes_the_target_hold_the_desired_values(desired, known, owned) -> None:
    delta = minimal_delta(desired, known, owned)
    after = {**(known or {}), **delta}
    for field, value in desired.items():
        if field not in owned:
            # held as the planner compares: numbers within 1e-9 relative are the same value
            # (0 is held for 2.2e-16: the write is not made)
            assert field in after and same_value(after[field], value)


@given(desired=STATES, known=st.none() | STATES, owned=st.sets(FIELDS))
def test_the_delta_is_minimal_and_never_touches_owned_fields(desired, known, owned) -> None:
    delta = minimal_delta(desired, known, owned)
    assert not set(delta) & owned
    assert set(delta) <= set(desired)
    if known is not None:
        for field, value in delta.items():
            assert field not in known or known[field] != value


@given(desired=STATES, owned=st.sets(FIELDS))
def test_a_target_that_holds_the_desired_state_gets_no_write(desired, owned) -> None:
    assert minimal_delta(desired, dict(desired), owned) == {}
    # echo: the target holds what we wrote plus fields we don't manage
    assert minimal_delta(desired, {**desired, "zz": 1}, owned) == {}


@given(desired=STATES, known=STATES, owned=st.sets(FIELDS))
def test_planning_converges_in_one_step(desired, known, owned) -> None:
    delta = minimal_delta(desired, known, owned)
    assert minimal_delta(desired, {**known, **delta}, owned) == {}


@given(a=STATES, b=STATES, target=st.text(max_size=5), cid=st.text(max_size=8))
def test_idempotency_key_depends_only_on_target_entity_and_desired_state(a, b, target, cid) -> None:
    assert idempotency_key(target, cid, "update", a) == idempotency_key(
        target, cid, "update", dict(reversed(list(a.items())))
    )
    if a != b:
        assert idempotency_key(target, cid, "update", a) != idempotency_key(
            target, cid, "update", b
        )
    assert idempotency_key(target, cid, "update", a) != idempotency_key(
        target + "x", cid, "update", a
    )
