"""Splitting a pipeline's text into steps and words.

Quoting follows the shell (as `shlex` in POSIX mode): whitespace separates words, '...' keeps
text verbatim, "..." keeps text with backslash escapes, a backslash outside quotes escapes the
next character. In addition `{...}` and `[...]` are kept whole, quotes included, so JSON
arguments like `map {"A": true}` and templates like `{code}/{year}` need no extra quoting.
A '|' outside quotes and brackets separates steps.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Word", "split_pipeline"]

_OPEN = "{["
_CLOSE = "}]"


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a pipeline: its text with quotes removed, and the quote it started with."""

    text: str
    quote: str | None = None


def split_pipeline(source: str) -> list[list[Word]]:
    """The pipeline's segments (source, then each step), each a list of words.

    Raises ValueError for unclosed quotes or brackets and for empty segments.
    """
    scanner = _Scanner(source)
    scanner.run()
    segments = scanner.segments
    for index, segment in enumerate(segments):
        if not segment:
            where = "before the first '|'" if index == 0 else f"after '|' number {index}"
            raise ValueError(f"nothing {where}: remove the extra '|' or write the step")
    return segments


class _Scanner:
    def __init__(self, source: str) -> None:
        self.source = source
        self.segments: list[list[Word]] = [[]]
        self.chars: list[str] | None = None
        self.quote: str | None = None  # quote this word started with

    def run(self) -> None:
        source, i, n = self.source, 0, len(self.source)
        while i < n:
            c = source[i]
            if c.isspace():
                self.end_word()
            elif c == "|":
                self.end_word()
                self.segments.append([])
            elif c == "'":
                end = source.find("'", i + 1)
                if end < 0:
                    raise ValueError(f"unclosed ' at position {i}: add the closing quote")
                self.add(source[i + 1 : end], quote="'")
                i = end
            elif c == '"':
                i = self.double_quoted(i)
            elif c == "\\":
                if i + 1 < n:
                    i += 1
                    self.add(source[i])
            elif c in _OPEN:
                i = self.bracketed(i)
            else:
                self.add(c)
            i += 1
        self.end_word()

    def add(self, text: str, quote: str | None = None) -> None:
        if self.chars is None:
            self.chars = []
            self.quote = quote
        self.chars.append(text)

    def end_word(self) -> None:
        if self.chars is not None:
            self.segments[-1].append(Word("".join(self.chars), self.quote))
            self.chars = None
            self.quote = None

    def double_quoted(self, start: int) -> int:
        source, i = self.source, start + 1
        out: list[str] = []
        while i < len(source):
            c = source[i]
            if c == '"':
                self.add("".join(out), quote='"')
                return i
            if c == "\\" and i + 1 < len(source) and source[i + 1] in '"\\$`':
                i += 1
                c = source[i]
            out.append(c)
            i += 1
        raise ValueError(f'unclosed " at position {start}: add the closing quote')

    def bracketed(self, start: int) -> int:
        """Copy `{...}`/`[...]` verbatim up to its matching close; JSON strings may hold any
        character. Returns the index of the closing bracket."""
        source, i, depth, in_string = self.source, start, 0, False
        while i < len(source):
            c = source[i]
            if in_string:
                if c == "\\":
                    i += 1
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in _OPEN:
                depth += 1
            elif c in _CLOSE:
                depth -= 1
                if depth == 0:
                    self.add(source[start : i + 1])
                    return i
            i += 1
        raise ValueError(
            f"unclosed {source[start]!r} at position {start}: close it, or quote the word"
        )
