"""The Tryton CRM Sink: billing notes on parties and opportunities (see notes.py).

Contract details for `billing_notes` (the only object of a `profile: crm` sink):

- A create puts the marker of its target record (object and canonical id) on the note's last
  line and first searches for it: a note that has it already is the one created before (an
  answer lost, a restart) and is only brought to the desired text. So a record has one note,
  rewritten in place, never a second one.
- An update reads the note and writes only when what it shows (or the record it is on)
  differs; a note edited by a person is rewritten to the desired text. A delete of a note that
  is gone is already done.
- Every write is read back: a note that does not show what was written is `retryable`.
- Tryton's refusals are `rejected` with Tryton's message; transport errors, timeouts and 5xx
  are `retryable` (outcomes.py, shared with the timesheet sink).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.tryton.client import TrytonClient
from connectors.tryton.lines import Refused, create_marker, target_id
from connectors.tryton.notes import (
    AMOUNTS,
    FIELDS,
    PER_CURRENCY,
    RESOURCES,
    note_fields,
    note_text,
    resource_of,
)
from connectors.tryton.outcomes import Mismatch, attempt
from hub.spi import Delta, Outcome

__all__ = ["NOTE_MODEL", "NOTE_NAME", "TrytonNoteSink"]

NOTE_MODEL = "ir.attachment"
NOTE_NAME = "Billing (synchub)"
_READ = ("resource", "description")
_KNOWN = frozenset(name for name, _ in FIELDS) | frozenset(RESOURCES)


class TrytonNoteSink:
    """Sink for `billing_notes`; see the module docstring for the contract details."""

    objects = ("billing_notes",)

    def __init__(self, system: str, client: TrytonClient) -> None:
        self.system = system
        self.client = client

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        """One outcome per delta, in order, written one at a time."""
        return [self._apply(d) for d in deltas]

    def read_back(self, object: str, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """A captured `billing_notes` record in delta terms: the record it is on, and the
        fields the note shows (amounts as numbers). None for a note that is not synchub's."""
        if object not in self.objects or not record.get("synchub_marker"):
            return None
        out: dict[str, Any] = {
            name: record[name] for name in RESOURCES if record.get(name) is not None
        }
        for name, _ in FIELDS:
            value = record.get(name)
            if name in AMOUNTS and value is not None and not PER_CURRENCY.fullmatch(value):
                value = float(value)  # one amount; per currency it stays text
            out[name] = value
        return out

    def close(self) -> None:
        self.client.close()

    # -- one delta --------------------------------------------------------------------------

    def _apply(self, delta: Delta) -> Outcome:
        return attempt(delta, self._write)

    def _write(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        if delta.object not in self.objects:
            raise Refused(
                f"object {delta.object!r} cannot be written to a Tryton CRM by synchub; "
                f"the writable objects are {list(self.objects)}"
            )
        unknown = sorted(set(delta.fields) - _KNOWN)
        if unknown:
            raise Refused(
                f"unknown billing_notes fields {unknown}; the fields are {sorted(_KNOWN)}"
            )
        if delta.op == "create":
            return self._create(delta)
        if delta.op == "update":
            return self._update(delta)
        return self._delete(delta)

    def _create(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        mark = create_marker(delta)
        resource = resource_of(delta.fields)
        message = note_text(delta.fields, mark)
        found = self.client.search(NOTE_MODEL, [("description", "like", f"%{mark}")], limit=1)
        if found:
            changed = self._converge(found[0], resource, message)
            return str(found[0]), {"marker": mark, "existing": True, "changed": changed}
        values = {"resource": resource, "name": NOTE_NAME, "type": "data", "description": message}
        (note,) = self.client.create(NOTE_MODEL, [values])
        self._verify(note, resource, message)
        return str(note), {"marker": mark}

    def _update(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        note = target_id(delta)
        current = self._read(note)
        if current is None:
            raise Refused(
                f"billing note {note} does not exist in Tryton (deleted there?); re-create it "
                "or resolve the record's link"
            )
        shown = note_fields(current["description"])
        fields = {**(shown[0] if shown else {}), **delta.fields}
        if not any(fields.get(name) is not None for name in RESOURCES):
            model, _, number = str(current["resource"]).partition(",")
            fields.update({n: number for n, m in RESOURCES.items() if m == model})
        mark = f"[synchub:{shown[1]}]" if shown else create_marker(delta)
        changed = self._converge(note, resource_of(fields), note_text(fields, mark))
        return str(note), {"changed": changed}

    def _delete(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        note = target_id(delta)
        if self._read(note) is None:
            return str(note), {"already_deleted": True}
        self.client.delete(NOTE_MODEL, [note])
        if self._read(note) is not None:
            raise Mismatch(
                f"Tryton answered success to deleting billing note {note} but it still exists; "
                "will retry"
            )
        return str(note), {}

    def _converge(self, note: int, resource: str, message: str) -> list[str]:
        """Write what differs on note `note`; the names written."""
        current = self._read(note)
        if current is None:
            raise Refused(f"billing note {note} does not exist in Tryton (deleted there?)")
        diff = {
            k: v
            for k, v in (("resource", resource), ("description", message))
            if str(current.get(k)) != v
        }
        if diff:
            self.client.write(NOTE_MODEL, [note], diff)
            self._verify(note, resource, message)
        return sorted(diff)

    def _verify(self, note: int, resource: str, message: str) -> None:
        current = self._read(note)
        if current is None or (current["resource"], current["description"]) != (resource, message):
            raise Mismatch(
                f"Tryton answered success but billing note {note} does not read back as "
                "written; will retry"
            )

    def _read(self, note: int) -> dict[str, Any] | None:
        rows = self.client.search_read(NOTE_MODEL, [("id", "=", note)], _READ)
        return rows[0] if rows else None
