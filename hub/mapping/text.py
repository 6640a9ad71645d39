"""Text and tag steps: lower, upper, strip, regex, split, tags, has_tag, tag_path, strip_tags,
max_len.

A tag is `#word` at the start of the text or after whitespace or an opening bracket/quote; it
runs to the next whitespace or '#', without trailing sentence punctuation (`.,;:!?)]}'"`).
A path tag is a tag containing '/', like `#acme/web/design`.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

from hub.mapping.runtime import Context, StepFailure, show

Args = tuple[Any, ...]

_TAG = re.compile(r"(?<![^\s(\[{\"'])#([^\s#]+)")
_TRAILING = ".,;:!?)]}'\""
_BAD_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")


def lower(value: Any, args: Args, ctx: Context) -> str:
    """Text in lower case."""
    return _text(value, "lower").lower()


def upper(value: Any, args: Args, ctx: Context) -> str:
    """Text in upper case."""
    return _text(value, "upper").upper()


def strip(value: Any, args: Args, ctx: Context) -> str:
    """Text without leading and trailing whitespace."""
    return _text(value, "strip").strip()


def regex(value: Any, args: Args, ctx: Context) -> str | None:
    """The group args[1] of the first match of the compiled pattern args[0]; None if no match."""
    match = args[0].search(_text(value, "regex"))
    return None if match is None else match.group(args[1])


def split(value: Any, args: Args, ctx: Context) -> str | None:
    """Part args[1] of the text split on args[0]; None when there is no such part."""
    parts = _text(value, "split").split(args[0])
    try:
        return parts[args[1]]
    except IndexError:
        return None


def tags(value: Any, args: Args, ctx: Context) -> list[str]:
    """The #tags in the text, without '#', in order of appearance."""
    return list(find_tags(_text(value, "tags")))


def has_tag(value: Any, args: Args, ctx: Context) -> bool:
    """Whether the text has tag args[0] (compared case-insensitively); None → False."""
    if value is None:
        return False
    return args[0] in scan(_text(value, "has_tag")).folded


def tag_path(value: Any, args: Args, ctx: Context) -> str | None:
    """Segment args[0] of the first path tag; None if there is no path tag or no such segment."""
    segments = _first_path(_text(value, "tag_path"))
    if segments is None:
        return None
    try:
        return segments[args[0]]
    except IndexError:
        return None


def tag_prefix(value: Any, args: Args, ctx: Context) -> str | None:
    """The first args[0] segments of the first path tag, joined by '/'; None if there is no
    path tag or it has fewer segments (e.g. `#acme/web/design` → `acme/web` for N=2)."""
    segments = _first_path(_text(value, "tag_prefix"))
    if segments is None:
        return None
    return "/".join(segments[: args[0]]) if len(segments) >= args[0] else None


def strip_tags(value: Any, args: Args, ctx: Context) -> str:
    """The text without its #tags, whitespace collapsed to single spaces."""
    return scan(_text(value, "strip_tags")).stripped


def max_len(value: Any, args: Args, ctx: Context) -> str:
    """The text unchanged if it has at most args[0] characters; an error otherwise."""
    text = _text(value, "max_len")
    if len(text) > args[0]:
        raise StepFailure(
            f"{show(text)} is {len(text)} characters long, more than the {args[0]} allowed: "
            "shorten it at the source or cut it with a 'regex' step"
        )
    return text


class TagScan(NamedTuple):
    """What the tag steps read from one text, found in one pass (see `scan`)."""

    tags: tuple[str, ...]
    """The tags in order, without '#' and trailing punctuation."""
    folded: frozenset[str]
    """The tags, case-folded (for has_tag)."""
    path: tuple[str, ...] | str | None
    """The segments of the first path tag, the reason it is malformed (str), or None."""
    stripped: str
    """The text without its tags, whitespace collapsed to single spaces."""


_NO_TAGS: tuple[str, ...] = ()


@functools.lru_cache(maxsize=8192)
def scan(text: str) -> TagScan:
    """The tags of `text`, its first path tag and its text without tags, in one pass.

    Cached: a mapping usually reads several things (path, flags, free text) from the same
    description, and each pipeline asks again; one regex split does for all of them (measured:
    3.2 µs per description where findall + sub with a callback took 10 per record).
    """
    if "#" not in text:
        return TagScan(_NO_TAGS, frozenset(), None, " ".join(text.split()))
    parts = _TAG.split(text)  # [text, word, text, word, ..., text]
    tags = []
    for i in range(1, len(parts), 2):
        word = parts[i]
        tag = word.rstrip(_TRAILING)
        if tag:
            tags.append(tag)
            parts[i] = word[len(tag) :]  # its trailing punctuation stays in the text
        else:
            parts[i] = "#" + word  # only punctuation: not a tag, the text keeps it
    return TagScan(
        tuple(tags),
        frozenset([tag.casefold() for tag in tags]),
        _first_path_tag(tags),
        " ".join("".join(parts).split()),
    )


def find_tags(text: str) -> tuple[str, ...]:
    """The tags of `text` in order (see the module docstring for what a tag is)."""
    return scan(text).tags


def _first_path_tag(tags: list[str]) -> tuple[str, ...] | str | None:
    for tag in tags:
        if "/" in tag:
            segments = tag.split("/")
            try:
                _check_path(tag, segments)
            except StepFailure as exc:
                return exc.message
            return tuple(segments)
    return None


def _first_path(text: str) -> tuple[str, ...] | None:
    found = scan(text).path
    if isinstance(found, str):
        raise StepFailure(found)
    return found


def _check_path(tag: str, segments: list[str]) -> None:
    if _PATH.fullmatch(tag):  # non-empty segments of allowed characters, single slashes
        return
    if tag.endswith("/"):
        reason = "it ends with '/'"
    elif "" in segments:
        reason = "it has an empty segment"
    else:
        bad = _BAD_CHAR.search(tag.replace("/", ""))
        reason = f"character {bad.group(0) if bad else '?'!r} is not allowed"
    raise StepFailure(
        f"path tag '#{tag}' is malformed ({reason}): write it as #client/project with only "
        "ASCII letters, digits, '_', '.' or '-' between single slashes"
    )


def _text(value: Any, step: str) -> str:
    if isinstance(value, str):
        return value
    raise StepFailure(f"needs text, got {show(value)}: add 'str' before '{step}'")
