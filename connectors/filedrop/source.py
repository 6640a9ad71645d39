"""Filedrop source: changes from CSV / JSONL files another system drops in a directory.

Checkpoint (JSON): `{"version": 1, "objects": {object: {file: state}}}` where a file's state is
`offset` (byte offset of the next unread complete line), `line` (its 1-based number), `size`
and `mtime_ns` (as last seen), `head` (hash of the first min(offset, 4096) bytes) and `prefix`
(hash of all `offset` bytes read). A file whose bytes before `offset` changed (or that shrank
below it) was rewritten and is read from the start: ingest drops the records that did not
change. A checkpoint without `prefix` (older synchub) is checked by `head` alone. Files that
disappear drop out of the checkpoint.

Here: listing the files, the checkpoint, schemas and `current_keys`. Reading one file into
changes is `reader.py`; the types of undeclared JSONL fields are inferred in `schema.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from connectors.filedrop.config import FieldType, ObjectOptions, avro_name, unique_names
from connectors.filedrop.files import first_csv_row
from connectors.filedrop.reader import FileReader, FileState
from connectors.filedrop.schema import NULLABLE_STRING, sample_types
from hub.spi import JSON, Batch, Change, ConnectorError, ObjectSchema

__all__ = ["CHECKPOINT_VERSION", "FiledropSource"]

CHECKPOINT_VERSION = 1
State = dict[str, dict[str, FileState]]


class FiledropSource:
    """A Source over `directory`: one object type per file-name pattern (see module doc)."""

    def __init__(self, name: str, directory: Path, objects: Mapping[str, ObjectOptions]) -> None:
        self.system = name
        self.directory = directory
        self._objects = dict(objects)

    def discover(self) -> list[ObjectSchema]:
        """One Avro record schema per object: declared fields, else inferred from the newest
        file (the last in name order)."""
        self._check_directory()
        return [self._schema(obj, opts) for obj, opts in self._objects.items()]

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        """Changes in complete lines after `checkpoint`, files in name order, per object."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._check_directory()
        previous = self._load_checkpoint(checkpoint)
        listings = {obj: self._listing(opts) for obj, opts in self._objects.items()}
        state: State = {
            obj: {name: previous.get(obj, {}).get(name) or FileState() for name, _ in files}
            for obj, files in listings.items()
        }
        pending: list[Change] = []
        last = checkpoint
        for obj, opts in self._objects.items():
            reader = FileReader(self.system, obj, opts, self._field_types(opts))
            for name, path in listings[obj]:
                for change in reader.changes(path, name, state[obj][name]):
                    pending.append(change)
                    if len(pending) >= batch_size:
                        last = _dump(state)
                        yield Batch(tuple(pending), last)
                        pending = []
        final = _dump(state)
        if pending or final != last:
            yield Batch(tuple(pending), final)

    def current_keys(self, object: str) -> set[str] | None:
        """Keys of live records in the newest file when `snapshot: true`, else None.

        None too when there is no file yet, its last line is incomplete (still being written),
        or a row's key cannot be read: a partial answer would make reconciliation delete records.
        """
        opts = self._options(object)
        if not opts.snapshot:
            return None
        self._check_directory()
        listing = self._listing(opts)
        if not listing:
            return None
        name, path = listing[-1]
        try:
            with path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() == 0:
                    return set()
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    return None
        except OSError as e:
            raise self._io_error(path, e) from e
        keys: set[str] = set()
        reader = FileReader(self.system, object, opts, self._field_types(opts))
        for change in reader.changes(path, name, FileState()):
            if change.error is not None and not change.key:
                return None
            if change.op == "delete":
                keys.discard(change.key)
            else:
                keys.add(change.key)
        return keys

    def close(self) -> None:
        """Nothing to release: files are opened per read."""

    # -- helpers ---------------------------------------------------------------------------

    def _options(self, object: str) -> ObjectOptions:
        try:
            return self._objects[object]
        except KeyError:
            raise ConnectorError(
                f"connector {self.system!r} (filedrop) has no object {object!r}; "
                f"its objects are {sorted(self._objects)}"
            ) from None

    def _check_directory(self) -> None:
        if not self.directory.is_dir():
            raise ConnectorError(
                f"connector {self.system!r} (filedrop): directory {str(self.directory)!r} does "
                f"not exist or is not a directory; create it or fix `connectors.{self.system}."
                "directory` (relative paths start at the config file's folder)"
            )

    def _io_error(self, path: Path, error: OSError) -> ConnectorError:
        return ConnectorError(
            f"connector {self.system!r} (filedrop): cannot read {str(path)!r}: "
            f"{error.strerror or error}; check the file's permissions"
        )

    def _listing(self, opts: ObjectOptions) -> list[tuple[str, Path]]:
        """Files matching the pattern, sorted by name; hidden (dot) files are skipped."""
        found = []
        for path in self.directory.glob(opts.pattern):
            if path.name.startswith(".") or not path.is_file():
                continue
            found.append((path.relative_to(self.directory).as_posix(), path))
        return sorted(found)

    def _newest(self, opts: ObjectOptions) -> Path | None:
        listing = self._listing(opts)
        return listing[-1][1] if listing else None

    def _field_types(self, opts: ObjectOptions) -> dict[str, FieldType] | None:
        """Declared types; for undeclared JSONL, types inferred from the newest file; for
        undeclared CSV, None (every column is a nullable string)."""
        if opts.fields:
            return dict(opts.fields)
        if opts.format == "csv":
            return None
        newest_first = [path for _, path in reversed(self._listing(opts))]
        sample = sample_types(newest_first, opts.delete_field)
        names = unique_names(sample)
        return {
            name: FieldType(avro or "string", nullable=True)
            for name, avro in zip(names, sample.values(), strict=True)
        }

    def _schema(self, obj: str, opts: ObjectOptions) -> ObjectSchema:
        types = self._field_types(opts)
        if types is None:
            newest = self._newest(opts)
            header = first_csv_row(newest) if newest is not None else None
            types = {name: NULLABLE_STRING for name in unique_names(header or ())}
        key = opts.key if opts.fields else avro_name(opts.key)
        if not types:
            types = {key: FieldType("string", nullable=False)}
        elif key not in types:
            types = {key: NULLABLE_STRING, **types}
        schema = {
            "type": "record",
            "name": avro_name(obj),
            "fields": [ftype.avro_field(name) for name, ftype in types.items()],
        }
        return ObjectSchema(object=obj, key_field=key, schema=schema)

    def _load_checkpoint(self, checkpoint: JSON | None) -> State:
        if checkpoint is None:
            return {}
        try:
            if checkpoint["version"] != CHECKPOINT_VERSION:
                raise ValueError(f"version {checkpoint['version']!r}")
            return {
                obj: {name: FileState.from_json(fs) for name, fs in files.items()}
                for obj, files in checkpoint["objects"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConnectorError(
                f"connector {self.system!r} (filedrop): the stored checkpoint is not a filedrop "
                f"checkpoint version {CHECKPOINT_VERSION} ({e!r}); reset this connector's "
                "checkpoint to read the directory from the start"
            ) from None


def _dump(state: State) -> dict[str, Any]:
    objects = {obj: {n: fs.to_json() for n, fs in files.items()} for obj, files in state.items()}
    return {"version": CHECKPOINT_VERSION, "objects": objects}
