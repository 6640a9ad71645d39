"""The Tryton ERP Sink: timesheet lines, projects and customers, one delta at a time, read back.

Contract details for `timesheet_lines` (projects: projects.py; customers: parties.py):

- Fields: `employee` (company.employee id), `work` (timesheet.work id) or `task` (a
  project.work id: the line goes on that task's timesheet work), `date` (ISO date), `hours`
  (number) or `duration` (seconds), `description` (text or null), optionally `company`.
- Idempotency: a create puts `[synchub:<16 hex>]` (a hash of the record it is for: object and
  canonical id) at the end of the line's description and first searches for it: a line that has
  it already is the one created before, and is only brought to the desired fields. Not a hash
  of the idempotency key: a create whose answer was lost is planned again with a new key when
  the entry changes before the retry, and must find the first line. (Lines written by earlier
  versions carry the idempotency key's marker: it is searched too.) Updates write only the fields that
  differ (none → no write); deleting a line that is gone is already done.
- Field conversion, markers and the read-back comparison are in `lines.py`.
- Every write is read back and compared: Tryton can answer success and still not hold the
  values; a mismatch is `retryable`, saying which field differs.
- Tryton's refusals (UserError: invoiced line, closed work, ...) are `rejected` with Tryton's
  message and what to do; transport errors, timeouts, 5xx and server crashes are `retryable`.
- One delta at a time: concurrent creates collide on SQLite sequences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.tryton.client import TrytonClient, TrytonError, TrytonUserError
from connectors.tryton.lines import (
    LINE_FIELDS,
    Line,
    Refused,
    create_marker,
    desired,
    difference,
    marker,
    same,
    split_marker,
    target_id,
    tryton_id,
    with_marker,
)
from connectors.tryton.outcomes import Mismatch, attempt, refusal
from connectors.tryton.parties import PartyWriter, party_read_back
from connectors.tryton.projects import ProjectWriter, project_read_back
from hub.spi import Delta, Outcome

__all__ = ["LINE_FIELDS", "TrytonSink", "create_marker", "marker", "split_marker", "with_marker"]

LINES = "timesheet_lines"
LINE_MODEL = "timesheet.line"
_READ = ("employee", "work", "date", "duration", "description", "company")
_HINTS = (
    (
        "invoiced",
        "the line is invoiced: a credit note is needed in Tryton; while the "
        "invoice is still a draft, deleting its invoice line frees the timesheet "
        "line, then retry",
    ),
    (
        'field "work"',
        "the work does not accept time then (closed, not started yet, or of "
        "another company): book the time on an open work, or change the work's "
        "timesheet dates in Tryton",
    ),
    (
        'field "employee"',
        "the employee cannot book time then (not employed on that date, or "
        "of another company): fix the employee in Tryton or in the mapping",
    ),
)


TASK_FIELDS = ("timesheet_works", "company")
"""What a line on a task needs of it (project.work)."""


class TrytonSink:
    """Sink for `timesheet_lines` (see the module docstring) and `projects` (projects.py)."""

    objects = ("timesheet_lines", "projects", "parties")

    def __init__(self, system: str, client: TrytonClient) -> None:
        self.system = system
        self.client = client
        self._projects = ProjectWriter(client)
        self._parties = PartyWriter(client)
        self._found: dict[str, int] | None = None
        self._batch: Sequence[Delta] = ()
        self._created: dict[str, tuple[int, dict[str, Any]]] = {}
        self._tasks: dict[int, dict[str, Any]] | None = None
        self._works: dict[int, dict[str, Any]] | None = None
        """Rows read for the whole batch when its first line needs one (None: not yet)."""

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        """One outcome per delta, in order; deltas are written one at a time.

        Per batch, not per line: one search finds the lines earlier attempts already created
        (by their markers), and one read verifies every line created now; Tryton's fixed cost
        per request is most of the time, so this is what keeps the hub near the ERP's speed.
        """
        self._found, self._batch, self._created = None, deltas, {}
        self._tasks, self._works = None, None
        outcomes = [self._apply(d) for d in deltas]
        if self._created:
            outcomes = self._verify_created(outcomes)
        return outcomes

    def _read_at_once(self, field: str, model: str, fields: Sequence[str]) -> dict[int, Any]:
        """The rows of every `model` record this batch's new lines name in `field` (their
        task's timesheet works and company, their timesheet work's company), read at once:
        read line by line they were most of a batch's requests (bench/tryton_sink.py: 200
        creates + 200 reads). When that read fails (a record Tryton does not have, Tryton
        unreachable) each line reads its own, and so gets its own outcome."""
        ids: set[int] = set()
        for d in self._batch:
            value = d.fields.get(field) if d.object == LINES else None
            if value is not None and not (field == "work" and "company" in d.fields):
                try:
                    ids.add(tryton_id(field, value))
                except Refused:
                    continue  # that line's own outcome says why
        if not ids:
            return {}
        try:
            rows = self.client.read(model, sorted(ids), list(fields))
        except TrytonError:
            return {}
        return {int(r["id"]): r for r in rows}

    def _existing(self) -> dict[str, int]:
        """Marker → id of the lines that already carry a marker of this batch's creates
        (searched once, when the batch's first valid create needs it)."""
        if self._found is not None:
            return self._found
        creates = [d for d in self._batch if d.op == "create" and d.object == LINES]
        marks = [create_marker(d) for d in creates] + [marker(d.idempotency_key) for d in creates]
        if not marks:
            return {}
        domain: list[Any] = ["OR", *[("description", "like", f"%{m}") for m in marks]]
        rows = self.client.search_read(LINE_MODEL, domain, ["description"])
        found: dict[str, int] = {}
        for row in rows:
            _, digest = split_marker(row["description"])
            if digest:
                found.setdefault(f"[synchub:{digest}]", int(row["id"]))
        self._found = found
        return found

    def _verify_created(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Read back every line created in this batch at once; a line that does not hold what
        was written turns its outcome into `retryable`."""
        ids = [line_id for line_id, _ in self._created.values()]
        try:
            rows = {
                int(r["id"]): r
                for r in self.client.search_read(LINE_MODEL, [("id", "in", ids)], _READ)
            }
        except TrytonError as e:
            return [
                Outcome(o.idempotency_key, "retryable", o.target_key, reason=f"cannot verify: {e}")
                if o.idempotency_key in self._created and o.status == "applied"
                else o
                for o in outcomes
            ]
        checked = []
        for o in outcomes:
            created = self._created.get(o.idempotency_key)
            if created is not None and o.status == "applied":
                line_id, values = created
                problem = difference(rows.get(line_id), values, line_id)
                if problem is not None:
                    o = Outcome(o.idempotency_key, "retryable", o.target_key, reason=problem)
            checked.append(o)
        return checked

    def read_back(self, object: str, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """A captured `timesheet_lines` record in the fields deltas are written in (see
        hub.spi.ReadsBack): `hours` and `duration` from the duration in seconds, `task` from
        the line's timesheet work's origin, `work`, `employee`, `company`, `date` as captured.
        An empty description is left out: a line created without one reads back as None,
        whether the delta said None or an empty text."""
        if object == "projects":
            return project_read_back(record)
        if object == "parties":
            return party_read_back(record)
        if object != LINES:
            return None
        out = {k: record[k] for k in ("employee", "work", "company", "date") if k in record}
        if record.get("task") is not None:
            out["task"] = record["task"]
        duration = record.get("duration")
        if isinstance(duration, int | float):
            out["duration"] = duration
            out["hours"] = duration / 3600
        if record.get("description") is not None:
            out["description"] = record["description"]
        return out

    def close(self) -> None:
        self.client.close()

    # -- one delta --------------------------------------------------------------------------

    def _apply(self, delta: Delta) -> Outcome:
        return attempt(delta, self._write, _refusal)

    def _write(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        if delta.object not in self.objects:
            raise Refused(
                f"object {delta.object!r} cannot be written to Tryton by synchub; the "
                f"writable objects are {list(self.objects)}"
            )
        if delta.object in ("projects", "parties"):
            return self._other(delta)
        if delta.op == "create":
            return self._create(delta)
        if delta.op == "update":
            return self._update(delta)
        return self._delete(delta)

    def _other(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        """A delta of `projects` (projects.py) or `parties` (parties.py)."""
        writer = self._projects if delta.object == "projects" else self._parties
        if delta.op == "create":
            return writer.create(delta)
        if delta.op == "update":
            return writer.update(delta)
        return writer.delete(delta)

    def _fields(self, delta: Delta) -> dict[str, Any]:
        """The delta's fields with `task` (a project.work id) turned into its timesheet work,
        and, for a new line without a `company`, the company of that work: a line is booked in
        the legal entity of the work it is on, whatever company the connection acts in (an
        update never moves a line to another company)."""
        fields = dict(delta.fields)
        if "task" in fields:
            if "work" in fields:
                raise Refused("give either `work` (timesheet.work id) or `task` (project.work id)")
            task = tryton_id("task", fields.pop("task"))
            if self._tasks is None:
                self._tasks = self._read_at_once("task", "project.work", TASK_FIELDS)
            known = self._tasks.get(task)
            rows = [known] if known else self.client.read("project.work", [task], TASK_FIELDS)
            works = rows[0]["timesheet_works"] if rows else []
            if not works:
                raise Refused(
                    f"task {task} has no timesheet work in Tryton: tick 'Timesheet Available' on "
                    "the task (or its project) so time can be booked on it"
                )
            fields["work"] = works[0]
            if delta.op == "create":
                fields.setdefault("company", rows[0]["company"])
        return fields

    def _in_company(self, line: Line) -> Line:
        """A new line without a company is booked in its timesheet work's company (read once
        the line's values are known to be valid)."""
        if "company" in line.values or "work" not in line.values:
            return line
        work = line.values["work"]
        if self._works is None:
            self._works = self._read_at_once("work", "timesheet.work", ("company",))
        known = self._works.get(work)
        rows = [known] if known else self.client.read("timesheet.work", [work], ["company"])
        if rows and rows[0]["company"] is not None:
            line.values["company"] = rows[0]["company"]
        return line

    def _create(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        line = self._in_company(desired(self._fields(delta), create=True))
        mark = create_marker(delta)
        found = self._existing()
        for earlier in (mark, marker(delta.idempotency_key)):
            if earlier in found:
                line_id = found[earlier]
                changed = self._converge(line_id, line, earlier)
                return str(line_id), {"marker": earlier, "existing": True, "changed": changed}
        values = dict(line.values)
        values["description"] = with_marker(values.get("description"), mark)
        (line_id,) = self.client.create(LINE_MODEL, [values])
        found[mark] = line_id
        self._created[delta.idempotency_key] = (line_id, values)
        return str(line_id), {"marker": mark}

    def _update(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        line_id = target_id(delta)
        line = desired(self._fields(delta), create=False)
        changed = self._converge(line_id, line, None)
        return str(line_id), {"changed": changed}

    def _delete(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        line_id = target_id(delta)
        if not self.client.search(LINE_MODEL, [("id", "=", line_id)]):
            return str(line_id), {"already_deleted": True}
        self.client.delete(LINE_MODEL, [line_id])
        if self.client.search(LINE_MODEL, [("id", "=", line_id)]):
            raise Mismatch(
                f"Tryton answered success to deleting timesheet line {line_id} but it still "
                "exists; will retry"
            )
        return str(line_id), {}

    def _converge(self, line_id: int, line: Line, mark: str | None) -> list[str]:
        """Write the fields of `line` that differ on line `line_id`; the names written."""
        current = self._read(line_id)
        if current is None:
            raise Refused(
                f"timesheet line {line_id} does not exist in Tryton (deleted there?); "
                "re-create it or resolve the record's link"
            )
        values = dict(line.values)
        if line.description_given:
            _, existing = split_marker(current["description"])
            keep = mark or (f"[synchub:{existing}]" if existing else None)
            values["description"] = with_marker(values["description"], keep)
        diff = {k: v for k, v in values.items() if not same(current.get(k), v)}
        if diff:
            self.client.write(LINE_MODEL, [line_id], diff)
            self._verify(line_id, diff)
        return sorted(diff)

    def _verify(self, line_id: int, values: Mapping[str, Any]) -> None:
        problem = difference(self._read(line_id), values, line_id)
        if problem is not None:
            raise Mismatch(problem)

    def _read(self, line_id: int) -> dict[str, Any] | None:
        rows = self.client.search_read(LINE_MODEL, [("id", "=", line_id)], _READ)
        return rows[0] if rows else None


def _refusal(error: TrytonUserError) -> str:
    """Tryton's message, and what to do about it (the timesheet hints)."""
    return refusal(error, _HINTS)
