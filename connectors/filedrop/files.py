"""Byte-exact file helpers: complete-line regions, CSV/JSONL rows with offsets, atomic writes.

Everything here works on bytes and absolute byte offsets so a reader can resume at the exact
end of the last row it consumed. Only complete lines (ending in b"\\n") are ever parsed: a line
still being written waits for the next read.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HEAD_BYTES",
    "MAX_PENDING_ROW",
    "Row",
    "atomic_write",
    "complete_lines",
    "csv_rows",
    "first_csv_row",
    "head_hash",
    "jsonl_rows",
    "skip_bom",
]

HEAD_BYTES = 4096
"""How many leading bytes of a file identify it (a rewritten file has a different head)."""

MAX_PENDING_ROW = 1 << 20
"""A CSV row whose quoted field is still open after this many bytes is reported as broken."""

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a file: absolute byte span [start, end), its 1-based first line, the line
    after it (`next_line`), and its parsed content.

    `values` holds CSV fields, `text` a JSONL line (without its line break). `error` is set when
    the bytes could not be parsed at all; `bad_utf8` when they are not valid UTF-8 (the content
    then holds surrogate escapes and must not be trusted).
    """

    start: int
    end: int
    line: int
    next_line: int
    values: tuple[str, ...] = ()
    text: str = ""
    bad_utf8: bool = False
    error: str | None = None


def head_hash(head: bytes, offset: int) -> str:
    """Fingerprint of the first min(offset, HEAD_BYTES) bytes of a file."""
    return hashlib.sha256(head[: min(offset, HEAD_BYTES)]).hexdigest()[:32]


def complete_lines(path: Path) -> Iterator[bytes]:
    """The lines of `path` from its start that end with b"\\n"; a leading BOM is removed."""
    with path.open("rb") as f:
        for number, line in enumerate(f):
            if not line.endswith(b"\n"):
                return
            yield line.removeprefix(BOM) if number == 0 else line


def first_csv_row(path: Path) -> tuple[str, ...] | None:
    """The first non-blank complete CSV row of `path` (its header), or None if there is none."""
    ended = False

    def lines() -> Iterator[str]:
        nonlocal ended
        for line in complete_lines(path):
            yield line.decode("utf-8", "replace")
        ended = True

    try:
        for row in csv.reader(lines()):
            if ended:
                return None
            if row:
                return tuple(cell.strip() for cell in row)
    except csv.Error:
        return None
    return None


def skip_bom(data: bytes, offset: int) -> int:
    """Bytes to skip at `offset`: the length of a UTF-8 byte-order mark at file start, else 0."""
    return len(BOM) if offset == 0 and data.startswith(BOM) else 0


def jsonl_rows(data: bytes, base: int, line: int) -> Iterator[Row]:
    """One Row per line of `data` (which ends with b"\\n"); `base`/`line`: where data starts."""
    start = 0
    size = len(data)
    while start < size:
        end = data.index(b"\n", start) + 1
        chunk = data[start:end]
        try:
            text, bad = chunk.decode("utf-8"), False
        except UnicodeDecodeError:
            text, bad = chunk.decode("utf-8", "surrogateescape"), True
        yield Row(base + start, base + end, line, line + 1, text=text.rstrip("\r\n"), bad_utf8=bad)
        start = end
        line += 1


class _LineFeed:
    """Feeds csv.reader one decoded line at a time and remembers how far it has fed."""

    def __init__(self, data: bytes, start: int) -> None:
        self.data = data
        self.pos = start
        self.lines = 0
        self.bad = False
        self.exhausted = False

    def __iter__(self) -> Iterator[str]:
        data, size = self.data, len(self.data)
        while self.pos < size:
            end = data.index(b"\n", self.pos) + 1
            chunk = data[self.pos : end]
            self.pos = end
            self.lines += 1
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError:
                text = chunk.decode("utf-8", "surrogateescape")
                self.bad = True
            yield text
        self.exhausted = True


def csv_rows(data: bytes, base: int, line: int) -> Iterator[Row]:
    """Complete CSV rows of `data` (which ends with b"\\n"), quoted line breaks included.

    Stops before a row whose quoted field is still open at the end of `data` (it is being
    written), unless that row already spans MAX_PENDING_ROW bytes: then its first line is
    reported as an error row and parsing resumes on the next line. Blank lines are skipped.
    """
    start = 0
    while start < len(data):
        feed = _LineFeed(data, start)
        reader = csv.reader(feed)
        row_start, row_line = start, line
        restart: tuple[int, int] | None = None
        while restart is None:
            feed.bad = False
            lines_before = feed.lines
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                after = row_line + feed.lines - lines_before
                yield Row(
                    base + row_start,
                    base + feed.pos,
                    row_line,
                    after,
                    error=f"CSV syntax error: {e}",
                )
                restart = (feed.pos, after)
                break
            if feed.exhausted:
                if len(data) - row_start <= MAX_PENDING_ROW:
                    return
                first_end = data.index(b"\n", row_start) + 1
                yield Row(
                    base + row_start,
                    base + first_end,
                    row_line,
                    row_line + 1,
                    error=f"a quoted field opened here is still not closed after "
                    f"{MAX_PENDING_ROW} bytes",
                )
                restart = (first_end, row_line + 1)
                break
            after = row_line + feed.lines - lines_before
            if values:
                yield Row(
                    base + row_start,
                    base + feed.pos,
                    row_line,
                    after,
                    values=tuple(values),
                    bad_utf8=feed.bad,
                )
            row_start, row_line = feed.pos, after
        start, line = restart


def atomic_write(directory: Path, name: str, content: bytes) -> Path:
    """Write `directory/name` all-or-nothing: temp file, fsync, rename, fsync the directory.

    Raises OSError. A failure up to the rename leaves no temp file and `name` untouched; a
    failed fsync of the directory after it leaves `name` in place, its durability unknown, so
    a caller that retries must look for it first.
    """
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        target = directory / name
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
    return target


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
