"""Reading one filedrop file: its unread complete rows as Changes, and how far it was read.

`FileState` is a file's entry in the source's checkpoint: `offset` (byte offset of the next
unread complete line), `line` (its 1-based number), `size` and `mtime_ns` (as last seen), `head`
(hash of the first min(offset, 4096) bytes) and `prefix` (hash of all `offset` bytes read). A
file whose bytes before `offset` changed, or that shrank below it, was rewritten and is read
from the start (ingest drops the records that did not change); a checkpoint without `prefix`
(older synchub) is checked by `head` alone.

`FileReader(system, object, options, types).changes(path, name, state)` yields the changes
after `state.offset`, advancing `state` before each one: CSV rows (the header gives the
columns) or JSONL objects, coerced to the object's field types; a row that cannot be read is a
Change with `error` (saying what to fix) and its raw text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from connectors.filedrop.config import FieldType, ObjectOptions, avro_name, truthy, unique_names
from connectors.filedrop.files import (
    HEAD_BYTES,
    Row,
    csv_rows,
    first_csv_row,
    head_hash,
    jsonl_rows,
    skip_bom,
)
from connectors.filedrop.schema import NULLABLE_STRING, SAMPLE
from hub.spi import Change, ConnectorError

__all__ = ["FileReader", "FileState"]


@dataclass(slots=True)
class FileState:
    """How far one file has been read; `head_bytes`, when known, gives `head` for any offset,
    and `hasher` (the hash of the bytes before `hashed`) with `data` (the bytes read from `base`)
    gives `prefix` for any offset up to base + len(data)."""

    offset: int = 0
    line: int = 1
    size: int = -1
    mtime_ns: int = -1
    head: str = ""
    prefix: str = ""
    head_bytes: bytes | None = None
    hasher: Any = None
    hashed: int = 0
    data: bytes = b""
    base: int = 0

    def to_json(self) -> dict[str, Any]:
        head = self.head if self.head_bytes is None else head_hash(self.head_bytes, self.offset)
        return {
            "offset": self.offset,
            "line": self.line,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "head": head,
            "prefix": self.prefix_hash(),
        }

    def prefix_hash(self) -> str:
        """The hash of the first `offset` bytes (incremental: each byte is hashed once)."""
        if self.hasher is None:
            return self.prefix
        if self.offset > self.hashed:
            view = memoryview(self.data)
            self.hasher.update(view[self.hashed - self.base : self.offset - self.base])
            self.hashed = self.offset
        return str(self.hasher.hexdigest()[:32])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileState:
        return cls(
            int(data["offset"]),
            int(data["line"]),
            int(data["size"]),
            int(data["mtime_ns"]),
            str(data["head"]),
            str(data.get("prefix", "")),
        )


class FileReader:
    """Turns the unread complete rows of one object's files into Changes, advancing FileState."""

    def __init__(
        self, system: str, obj: str, opts: ObjectOptions, types: dict[str, FieldType] | None
    ) -> None:
        self.system = system
        self.obj = obj
        self.opts = opts
        self.types = types
        self.declared = bool(opts.fields)
        self.key_name = avro_name(opts.key)

    def changes(self, path: Path, name: str, fs: FileState) -> Iterator[Change]:
        """Changes after `fs.offset` in `path`; `fs` is advanced before each change is yielded."""
        try:
            with path.open("rb") as f:
                st = os.fstat(f.fileno())
                if fs.offset == st.st_size == fs.size and fs.mtime_ns == st.st_mtime_ns:
                    return
                head = f.read(HEAD_BYTES)
                hasher = hashlib.sha256()
                if fs.offset and (
                    st.st_size < fs.offset
                    or head_hash(head, fs.offset) != fs.head
                    or not _same_prefix(f, fs.offset, fs.prefix, hasher)
                ):
                    fs.offset, fs.line, hasher = 0, 1, hashlib.sha256()
                f.seek(fs.offset)
                data = f.read()
        except FileNotFoundError:
            return
        except OSError as e:
            raise ConnectorError(
                f"connector {self.system!r} (filedrop): cannot read {str(path)!r}: "
                f"{e.strerror or e}; check the file's permissions"
            ) from e
        data = data[: data.rfind(b"\n") + 1]
        fs.head_bytes = head if fs.offset >= HEAD_BYTES else (head[: fs.offset] + data)[:HEAD_BYTES]
        fs.size, fs.mtime_ns = st.st_size, st.st_mtime_ns
        fs.hasher, fs.hashed, fs.data, fs.base = hasher, fs.offset, data, fs.offset
        try:
            if data:
                when = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
                parse = self._csv if self.opts.format == "csv" else self._jsonl
                yield from parse(path, name, fs, data, when)
        finally:
            fs.prefix = fs.prefix_hash()  # the file is done: keep its hash, not its bytes
            fs.hasher, fs.data = None, b""

    # -- CSV --------------------------------------------------------------------------------

    def _csv(
        self, path: Path, name: str, fs: FileState, data: bytes, when: dt.datetime
    ) -> Iterator[Change]:
        start = fs.offset
        skip = skip_bom(data, start)
        header: tuple[str, ...] | None = None if start == 0 else (first_csv_row(path) or ())
        layout = None if header is None else self._layout(header)
        for row in csv_rows(data[skip:] if skip else data, start + skip, fs.line):
            fs.offset, fs.line = row.end, row.next_line
            if header is None and row.error is None:
                header = tuple(cell.strip() for cell in row.values)
                layout = self._layout(header)
                continue
            yield self._csv_change(name, row, header or (), layout, data, start, when)

    def _layout(self, header: Sequence[str]) -> _CsvLayout:
        index = {column: i for i, column in enumerate(header)}
        if self.declared:
            columns = [(n, t.coercer, index.get(n)) for n, t in (self.types or {}).items()]
        else:
            names = unique_names(header)
            columns = [(n, NULLABLE_STRING.coercer, i) for i, n in enumerate(names)]
        delete = self.opts.delete_field
        return _CsvLayout(
            index.get(self.opts.key), None if delete is None else index.get(delete), columns
        )

    def _csv_change(
        self,
        name: str,
        row: Row,
        header: tuple[str, ...],
        layout: _CsvLayout | None,
        data: bytes,
        start: int,
        when: dt.datetime,
    ) -> Change:
        pos = f"{name}:{row.line}"
        values = row.values
        key_at = None if layout is None else layout.key
        key = values[key_at] if key_at is not None and key_at < len(values) else ""
        if row.error is not None:
            problem = (
                f"{row.error} at {pos}; a field containing a comma, quote or line break "
                "must be in double quotes, with inner quotes doubled"
            )
        elif row.bad_utf8:
            problem = _bad_utf8(pos)
        elif layout is None or len(values) != len(header):
            problem = (
                f"the row has {len(values)} fields but the header has {len(header)}, at "
                f"{pos}; quote fields that contain commas, or fix the row"
            )
        elif key_at is None:
            problem = (
                f"the header of {name} has no column {self.opts.key!r} (the key of "
                f"{self.obj}), at {pos}; fix the export or `objects.{self.obj}.key`"
            )
        elif not key.strip():
            problem = self._no_key(pos)
        else:
            if layout.delete is not None and truthy(values[layout.delete]):
                return Change(self.obj, key, "delete", None, pos, when)
            record = {
                field: coerce(None if i is None else values[i])
                for field, coerce, i in layout.columns
            }
            return Change(self.obj, key, "upsert", record, pos, when)
        return self._broken(key, pos, when, problem, data[row.start - start : row.end - start])

    # -- JSONL ------------------------------------------------------------------------------

    def _jsonl(
        self, path: Path, name: str, fs: FileState, data: bytes, when: dt.datetime
    ) -> Iterator[Change]:
        start = fs.offset
        skip = skip_bom(data, start)
        for row in jsonl_rows(data[skip:] if skip else data, start + skip, fs.line):
            fs.offset, fs.line = row.end, row.next_line
            if row.text.strip():
                yield self._jsonl_change(name, row, data, start, when)

    def _jsonl_change(
        self, name: str, row: Row, data: bytes, start: int, when: dt.datetime
    ) -> Change:
        pos = f"{name}:{row.line}"
        key = ""
        if row.bad_utf8:
            problem = _bad_utf8(pos)
        else:
            try:
                value = json.loads(row.text)
            except json.JSONDecodeError as e:
                problem = (
                    f"invalid JSON ({e.msg}, column {e.colno}) at {pos}; fix the line "
                    "in the exporting system and drop a corrected file"
                )
            else:
                if not isinstance(value, dict):
                    problem = (
                        f"expected a JSON object, got {type(value).__name__} at {pos}; "
                        "write one object per line"
                    )
                else:
                    raw_key = value.get(self.opts.key)
                    if raw_key is None or raw_key == "" or isinstance(raw_key, dict | list):
                        problem = self._no_key(pos)
                    else:
                        key = str(raw_key)
                        change = self._jsonl_record(key, value, pos, when)
                        if change is not None:
                            return change
                        problem = self._unknown_field(value, pos)
        return self._broken(key, pos, when, problem, data[row.start - start : row.end - start])

    def _unknown_field(self, value: dict[str, Any], pos: str) -> str:
        types = self.types or {}
        unknown = next(f for f in unique_names(value) if f not in types)
        return (
            f"field {unknown!r} is not in the schema of {self.obj}, which was inferred from "
            f"the first {SAMPLE} records of the newest files, at {pos}; declare the fields in "
            f"`objects.{self.obj}.fields`"
        )

    def _jsonl_record(
        self, key: str, value: dict[str, Any], pos: str, when: dt.datetime
    ) -> Change | None:
        """The change of one JSON object; None when an undeclared record has a non-null field
        that its inferred schema lacks (it would be dropped silently)."""
        delete = self.opts.delete_field
        if delete is not None and truthy(value.get(delete)):
            return Change(self.obj, key, "delete", None, pos, when)
        types = self.types or {}
        if self.declared:
            record = {field: ftype.coerce(value.get(field)) for field, ftype in types.items()}
        else:
            record = {}
            for field, item in zip(unique_names(value), value.values(), strict=True):
                ftype = types.get(field)
                if ftype is None and item is not None and field != self.key_name:
                    return None
                record[field] = item if ftype is None else ftype.coerce(item)
        return Change(self.obj, key, "upsert", record, pos, when)

    # -- errors -----------------------------------------------------------------------------

    def _no_key(self, pos: str) -> str:
        return (
            f"the record has no value for the key field {self.opts.key!r}, at {pos}; every "
            f"{self.obj} record needs one (see `objects.{self.obj}.key`)"
        )

    def _broken(self, key: str, pos: str, when: dt.datetime, problem: str, raw: bytes) -> Change:
        text = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
        return Change(self.obj, key, "upsert", None, pos, when, error=problem, raw=text)


@dataclass(frozen=True, slots=True)
class _CsvLayout:
    """Where the key and delete marker are in a header, and how each record field is built."""

    key: int | None
    delete: int | None
    columns: list[tuple[str, Callable[[Any], Any], int | None]]


def _bad_utf8(pos: str) -> str:
    return (
        f"the line is not valid UTF-8, at {pos} (undecodable bytes are shown as \\x.. in "
        "raw); export the file as UTF-8 and drop it again"
    )


def _same_prefix(f: BinaryIO, offset: int, expected: str, hasher: Any) -> bool:
    """Feed the first `offset` bytes of `f` to `hasher`; whether they are all there and hash to
    `expected` (always true for an `expected` of "": a checkpoint from before `prefix`)."""
    f.seek(0)
    remaining = offset
    while remaining:
        chunk = f.read(min(remaining, 1 << 20))
        if not chunk:
            return False
        hasher.update(chunk)
        remaining -= len(chunk)
    return not expected or hasher.hexdigest()[:32] == expected
