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
    "HIDDEN",
    "MAX_DS",
    "add_tags",
    "find_tags",
    "hide",
    "is_hidden",
    "normalize_tag",
    "remove_tags",
]

HIDDEN = "HIDDEN"
MAX_DS = 256
"""TimeTagger refuses strings of this length or longer ("must be less than 256 chars")."""

_TAG_CHAR = r"[0-9A-Za-z\-_/\u0080-\U0010ffff]"
_TAG = re.compile(rf"#({_TAG_CHAR}+)")
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
