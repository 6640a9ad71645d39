"""Filedrop sink: writes deltas as import files (JSONL or CSV) into an outbox directory.

Each `apply` writes at most one new file per object, `<object>-<UTC yyyymmddTHHMMSS.ffffff>-<n>
.<ext>`, atomically (hidden temp file, fsync, rename, fsync the directory). Every row carries
`idempotency_key`, `op`, `target_key`, `canonical_id`, then the delta's fields. Idempotency keys
already present in the outbox (subfolders included, so consumed files may be moved to e.g.
`outbox/done/`) are never written again.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from connectors.filedrop.files import atomic_write
from hub.spi import Delta, Outcome

__all__ = ["RESERVED", "FiledropSink", "target_key_of"]

RESERVED = ("idempotency_key", "op", "target_key", "canonical_id")
_OUR_FILE = re.compile(r"^[^.].*-\d{8}T\d{6}\.\d{6}-\d+\.(jsonl|csv)\Z")


class Unrepresentable(ValueError):
    """A value that the outbox format cannot carry."""


def target_key_of(delta: Delta) -> str:
    """`delta.target_key`, else the canonical id after its first '/' ("TimeEntry/42" → "42")."""
    if delta.target_key is not None:
        return delta.target_key
    return delta.canonical_id.split("/", 1)[-1]


class FiledropSink:
    """A Sink that drops one import file per object and `apply` call into `outbox`."""

    def __init__(self, name: str, outbox: Path, fmt: Literal["jsonl", "csv"]) -> None:
        self.system = name
        self.outbox = outbox
        self.format = fmt
        self._index: dict[str, str] | None = None
        self._scanned: set[str] = set()
        """Outbox files whose keys are in `_index` (ours, and those other processes wrote)."""
        self._seq = 0

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        """One Outcome per delta, in order; see the module doc for what is written."""
        if not deltas:
            return []
        try:
            index = self._load_index()
        except OSError as e:
            reason = f"cannot scan the outbox {str(self.outbox)!r}: {e.strerror or e}"
            return [Outcome(d.idempotency_key, "retryable", reason=reason) for d in deltas]
        answers: dict[str, Outcome] = {}
        groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        seen: set[str] = set()
        for delta in deltas:
            key = delta.idempotency_key
            if key in seen:
                continue
            seen.add(key)
            if key in index:
                answers[key] = Outcome(key, "applied", target_key=index[key])
                continue
            try:
                row = self._row(delta)
            except Unrepresentable as e:
                answers[key] = Outcome(key, "rejected", reason=str(e))
                continue
            groups.setdefault(delta.object, []).append((key, row["target_key"], row))
        for obj, rows in groups.items():
            try:
                path = self._write(obj, [row for _, _, row in rows])
            except OSError as e:
                self._index = None  # the file may be in place (a failed fsync): rescan first
                self._scanned.clear()
                reason = f"cannot write to the outbox {str(self.outbox)!r}: {e.strerror or e}"
                for key, _, _ in rows:
                    answers[key] = Outcome(key, "retryable", reason=reason)
                continue
            self._scanned.add(path.name)
            for key, target_key, _ in rows:
                index[key] = target_key
                answers[key] = Outcome(
                    key, "applied", target_key=target_key, details={"file": path.name}
                )
        return [answers[d.idempotency_key] for d in deltas]

    def close(self) -> None:
        """Nothing to release: every write opens and closes its own file."""

    # -- rows -------------------------------------------------------------------------------

    def _row(self, delta: Delta) -> dict[str, Any]:
        """The row for `delta`; raises Unrepresentable with a reason for the rejection."""
        if delta.op == "delete" and delta.target_key is None:
            raise Unrepresentable(
                f"cannot delete {delta.canonical_id}: the delta has no target_key, so "
                f"{self.system} would not know which record to delete"
            )
        clash = sorted(set(delta.fields) & set(RESERVED))
        if clash:
            raise Unrepresentable(
                f"field names {clash} clash with the outbox's own columns {list(RESERVED)}; "
                "rename them in the outbound mapping"
            )
        row: dict[str, Any] = {
            "idempotency_key": delta.idempotency_key,
            "op": delta.op,
            "target_key": target_key_of(delta),
            "canonical_id": delta.canonical_id,
        }
        for name, value in delta.fields.items():
            try:
                row[str(name)] = _jsonable(value)
            except Unrepresentable as e:
                raise Unrepresentable(
                    f"field {name!r} of {delta.canonical_id}: {e}; map it to a string or number "
                    "in the outbound mapping"
                ) from None
            if self.format == "csv" and len(_cell(row[str(name)])) > csv.field_size_limit():
                raise Unrepresentable(
                    f"field {name!r} of {delta.canonical_id} is {len(_cell(row[str(name)])):,} "
                    f"characters, more than CSV readers take ({csv.field_size_limit():,}, "
                    "Python's own csv module included, which reads the outbox back for "
                    "idempotency): cut it in the outbound mapping (e.g. 'max_len') or use "
                    "outbox_format jsonl"
                )
        return row

    def _encode(self, rows: list[dict[str, Any]]) -> bytes:
        if self.format == "jsonl":
            text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            return text.encode("utf-8")
        columns: dict[str, None] = dict.fromkeys(RESERVED)
        for row in rows:
            columns.update(dict.fromkeys(row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({name: _cell(value) for name, value in row.items()})
        return buffer.getvalue().encode("utf-8")

    # -- files ------------------------------------------------------------------------------

    def _write(self, obj: str, rows: list[dict[str, Any]]) -> Path:
        """Write `rows` as one new file; raises OSError with nothing left behind."""
        self.outbox.mkdir(parents=True, exist_ok=True)
        content = self._encode(rows)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", obj).lstrip(".") or "object"
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%f")
        while True:
            self._seq += 1
            # <n>: this process's id, then its count, so two writers never pick one name
            name = f"{safe}-{stamp}-{os.getpid()}{self._seq:06d}.{self.format}"
            if not (self.outbox / name).exists():
                break
        return atomic_write(self.outbox, name, content)

    def _load_index(self) -> dict[str, str]:
        """Idempotency key → target key of every row already in the outbox: scanned whole
        once, then the files other processes (several workers of one target) added since.
        The first scan also removes the temp files of writes killed halfway (_remove_stale)."""
        if self._index is None:
            self._index = {}
            self._scanned = set()
            if self.outbox.is_dir():
                _remove_stale(self.outbox)
        if self.outbox.is_dir():
            for path in sorted(self.outbox.rglob("*")):
                name = path.name
                if name not in self._scanned and _OUR_FILE.match(name) and path.is_file():
                    self._index.update(_keys_in(path))
                    self._scanned.add(name)
        return self._index


STALE_AFTER = 3600.0
"""Seconds after which a hidden temp file in the outbox is a write killed halfway."""
_TEMP_FILE = re.compile(r"^\..*\.tmp\Z")


def _remove_stale(outbox: Path) -> None:
    """Delete `atomic_write` temp files (`.<random>.tmp`) older than STALE_AFTER: their write
    never reached its rename (the process was killed), so no reader has seen them. Younger ones
    may belong to a write in progress in another process and are left alone."""
    now = time.time()
    for path in outbox.iterdir():
        if not _TEMP_FILE.match(path.name):
            continue
        try:
            if path.is_file() and now - path.stat().st_mtime > STALE_AFTER:
                path.unlink()
        except OSError:
            continue  # gone already, or not ours to delete: the next scan tries again


def _keys_in(path: Path) -> dict[str, str]:
    """Idempotency key → target key of each readable row of one outbox file."""
    text = path.read_text("utf-8", errors="replace")
    rows: list[Mapping[str, Any]] = []
    if path.suffix == ".csv":
        try:
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
        except csv.Error:
            return {}
    else:
        for line in text.splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                rows.append(value)
    return {
        str(row["idempotency_key"]): str(row.get("target_key") or "")
        for row in rows
        if row.get("idempotency_key")
    }


def _jsonable(value: Any) -> Any:
    """`value` as plain JSON: Decimal, UUID → str; dates → ISO 8601; else Unrepresentable."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unrepresentable(f"{value} cannot be written as JSON")
        return value
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise Unrepresentable("a mapping with non-string keys cannot be written as JSON")
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    raise Unrepresentable(f"a value of type {type(value).__name__} cannot be written as JSON")


def _cell(value: Any) -> str:
    """A JSON-ready value as one CSV cell: null → empty, true/false, nested → compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)
