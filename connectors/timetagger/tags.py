"""#tags in TimeTagger descriptions, by TimeTagger's own rules, and the soft-delete marker.

A tag is '#' followed by one or more of: letters, digits, '-', '_', '/', or any character
above U+007F (TimeTagger's `is_valid_tag_charcode`); TimeTagger compares tags lowercased.
A description starting with "HIDDEN" is a soft-deleted record. Descriptions must stay
shorter than MAX_DS characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "ELLIPSIS",
    "HIDDEN",
    "MAX_DS",
    "add_tags",
    "find_tags",
    "fit",
    "hide",
    "is_hidden",
    "normalize_tag",
    "remove_tags",
]

HIDDEN = "HIDDEN"
MAX_DS = 256
"""TimeTagger refuses strings of this length or longer ("must be less than 256 chars")."""

ELLIPSIS = "\u2026"
"""Marks where `fit` cut free text (one character; a tag character too, see `fit`)."""

_TAG_CHAR = r"[0-9A-Za-z\-_/\u0080-\U0010ffff]"
_TAG = re.compile(rf"#({_TAG_CHAR}+)")
_PARTS = re.compile(rf"(#{_TAG_CHAR}+)")
_WHOLE_TAG = re.compile(rf"{_TAG_CHAR}+\Z")


def normalize_tag(tag: str) -> str:
    """`tag` without a leading '#', lowercased; ValueError if it is not a valid tag."""
    name = tag.strip().removeprefix("#").lower()
    if not _WHOLE_TAG.match(name):
        raise ValueError(
            f"{tag!r} is not a TimeTagger tag: use letters, digits, '-', '_' and '/' "
            "(e.g. 'sync-error' or 'acme/website')"
        )
    return name


def find_tags(ds: str) -> list[str]:
    """The tags in `ds`, lowercased, without '#', each once, in order of appearance."""
    return list(dict.fromkeys(m.group(1).lower() for m in _TAG.finditer(ds)))


def add_tags(ds: str, tags: Iterable[str]) -> str:
    """`ds` with ' #tag' appended for each of `tags` it does not have yet."""
    have = set(find_tags(ds))
    out = ds.rstrip()
    for tag in tags:
        name = normalize_tag(tag)
        if name not in have:
            have.add(name)
            out = f"{out} #{name}" if out else f"#{name}"
    return out


def remove_tags(ds: str, tags: Iterable[str]) -> str:
    """`ds` without any occurrence of `tags` (whole tags, any case) and the space before each."""
    drop = {normalize_tag(tag) for tag in tags}
    if not drop.intersection(find_tags(ds)):
        return ds

    def keep(match: re.Match[str]) -> str:
        return "" if match.group(2).lower() in drop else match.group(0)

    return re.sub(rf"(\s*)#({_TAG_CHAR}+)", keep, ds).strip()


def is_hidden(ds: str) -> bool:
    """Whether the record is soft-deleted (its description starts with HIDDEN)."""
    return ds.startswith(HIDDEN)


def hide(ds: str) -> str:
    """The description of the soft-deleted record, cut to fit TimeTagger's length limit."""
    if is_hidden(ds):
        return ds
    return f"{HIDDEN} {ds.strip()}".rstrip()[: MAX_DS - 1]


def fit(ds: str, limit: int = MAX_DS - 1) -> str:
    """`ds` in at most `limit` characters, made by cutting its free text, never a #tag: every
    tag stays, whole and in its place. The text is kept from the start; where it is cut it ends
    with an ellipsis, and the free text after the cut shrinks to the single space that keeps
    two tags apart. ValueError if the tags alone do not fit.

    The ellipsis (U+2026) is a tag character to TimeTagger, so it never directly follows a tag
    or a '#': the character after a tag is kept (a space if it was a '#' and nothing of its
    text is), and a cut text loses a trailing '#'."""
    if len(ds) <= limit:
        return ds
    parts = _PARTS.split(ds)  # free text at even indexes, tags at odd ones
    last = len(parts) - 1
    # Each text as short as it can be: nothing at either end, one space between two tags.
    shrunk = [p if i % 2 else (" " if p and 0 < i < last else "") for i, p in enumerate(parts)]
    # The first text that does not fit whole when every later text is shrunk: cut there, or,
    # if what comes after it leaves no room even for the ellipsis, in an earlier text.
    first = next(
        i
        for i in range(0, last + 1, 2)
        if len("".join(parts[: i + 1])) + len("".join(shrunk[i + 1 :])) > limit
    )
    for i in range(first, -1, -2):
        lead = parts[i][:1] if i > 0 else ""  # the character that ends the tag before
        body = parts[i][len(lead) :]
        sep = " " if i < last else ""  # between the ellipsis and the next tag
        head, tail = "".join(parts[:i]), "".join(shrunk[i + 1 :])
        room = limit - len(head) - len(lead) - len(sep) - len(ELLIPSIS) - len(tail)
        if not body.strip() or room < 0:
            continue  # no text to cut here, or no room for it
        text = body[:room].rstrip()
        while text.endswith("#"):
            text = text[:-1].rstrip()
        if not text and lead == "#":
            lead = " "  # '#…' would be a tag
        if text.split() == body.split() and not any(map(str.strip, parts[i + 2 :: 2])):
            return head + lead + text + sep + tail  # only spaces had to go: nothing was cut
        return head + lead + text + ELLIPSIS + sep + tail
    # Only the tags and whitespace fit (free text spread thin between long runs of spaces).
    out = "".join(shrunk)
    if any(parts[i].strip() for i in range(0, last + 1, 2)):
        out = f"{out.rstrip()} {ELLIPSIS}"
    if len(out) <= limit:
        return out
    tags = sum(len(p) for p in parts[1::2])
    raise ValueError(
        f"the description cannot be cut to {limit} characters without losing a #tag: its "
        f"tags alone take {tags} characters"
    )
