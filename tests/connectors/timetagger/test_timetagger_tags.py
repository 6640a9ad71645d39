"""`fit`: a description cut to TimeTagger's limit by shortening its free text, never a #tag."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connectors.timetagger.tags import ELLIPSIS, MAX_DS, add_tags, find_tags, fit

TAG = re.compile(r"#[0-9A-Za-z\-_/\u0080-\U0010ffff]+")
"""A tag as TimeTagger reads it (the ellipsis is a tag character: it must not touch one)."""

words = st.sampled_from(["Design", "review", "call", "#", "é", ",", ".", "x" * 30, "naïve"])
tags = st.sampled_from(["#acme/web", "#billable", "#sync-error", "#ünï", "#a", "#x-y_z"])
spaces = st.sampled_from([" ", "  ", "", "\n"])
descriptions = st.lists(st.tuples(words | tags, spaces), max_size=40).map(
    lambda parts: "".join(a + b for a, b in parts)
)


@given(ds=descriptions, limit=st.integers(12, 60))
@example(ds="#a#b " + "c" * 40, limit=20)
@example(ds="issue # " + "x" * 40 + " #acme", limit=20)
@example(ds="#a" + " " * 30 + "#b text", limit=12)
@example(ds="#a" + " " * 30 + "#b", limit=12)
def test_fit_cuts_free_text_only_and_keeps_every_tag(ds: str, limit: int) -> None:
    try:
        out = fit(ds, limit)
    except ValueError as e:  # only when the tags, a space apart, leave no room for "…"
        assert "without losing a #tag" in str(e)
        found = TAG.findall(ds)
        assert sum(map(len, found)) + len(found) + 3 > limit
        return
    assert len(out) <= limit
    assert TAG.findall(out) == TAG.findall(ds)  # every tag, whole, in order, none made up
    if len(ds) <= limit:
        assert out == ds
    text, kept = free_text(ds), free_text(out).replace(ELLIPSIS, "")
    assert text.startswith(kept)  # the text is kept from its start
    assert (ELLIPSIS in out) == (kept != text)  # an ellipsis where, and only where, text was cut


def free_text(ds: str) -> str:
    """The description's text without its tags and whitespace."""
    return "".join(TAG.sub(" ", ds).split())


def test_fit_refuses_when_the_tags_alone_do_not_fit() -> None:
    with pytest.raises(ValueError, match="tags alone take 60 characters"):
        fit("text " + " ".join(["#" + "t" * 9] * 6), 50)


def test_a_flag_on_a_long_description_keeps_the_start_of_the_text() -> None:
    text = "Workshop with the client about the relaunch: " + "notes " * 50
    ds = text[: 250 - len(" #acme/web #billable")] + " #acme/web #billable"
    assert len(ds) == 250
    out = fit(add_tags(ds, ["sync-error"]))
    assert len(out) <= MAX_DS - 1
    assert find_tags(out) == ["acme/web", "billable", "sync-error"]
    assert out.startswith("Workshop with the client about the relaunch: notes")
    assert out.endswith(f"{ELLIPSIS} #acme/web #billable #sync-error")
