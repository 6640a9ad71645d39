"""`hub.mapping.text.scan` (one pass for every tag step) against the plain definition of a tag:
`_TAG.findall` with trailing punctuation stripped, and `_TAG.sub` for the text without tags."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.mapping.text import _TAG, _TRAILING, find_tags, scan


def reference_tags(text: str) -> tuple[str, ...]:
    return tuple(filter(None, [word.rstrip(_TRAILING) for word in _TAG.findall(text)]))


def reference_stripped(text: str) -> str:
    def untag(match: re.Match[str]) -> str:
        word = match.group(1)
        tag = word.rstrip(_TRAILING)
        return word[len(tag) :] if tag else match.group(0)

    return " ".join(_TAG.sub(untag, text).split())


TEXT = st.text(alphabet=st.sampled_from(list("ab/#. \t\n!?()[]{}'\"-_éÉ")), max_size=40)


@settings(max_examples=3000, deadline=None)
@given(TEXT)
@example("Kick-off  #acme/web\n#billable meeting")
@example('#...  (#Tag) #a#b #/ #x/ #x//y "#q" #!')
def test_scan_is_the_reference(text: str) -> None:
    found = scan.__wrapped__(text)  # uncached: every example computes afresh
    assert found.tags == reference_tags(text) == find_tags(text)
    assert found.folded == frozenset(t.casefold() for t in reference_tags(text))
    assert found.stripped == reference_stripped(text)
    paths = [t for t in found.tags if "/" in t]
    if not paths:
        assert found.path is None
    elif isinstance(found.path, tuple):
        assert "/".join(found.path) == paths[0]
    else:
        assert f"'#{paths[0]}' is malformed" in found.path


def test_scan_examples() -> None:
    found = scan("Done #Acme/web/design, then #billable. (#x) #!")
    assert found.tags == ("Acme/web/design", "billable", "x")
    assert found.folded == {"acme/web/design", "billable", "x"}
    assert found.path == ("Acme", "web", "design")
    assert found.stripped == "Done , then . () #!"
    assert scan("no tags\there") == ((), frozenset(), None, "no tags here")
    assert isinstance(scan("#acme//web").path, str)
