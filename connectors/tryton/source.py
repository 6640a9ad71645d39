"""The Tryton Source: polls business objects by modification stamp through an OverlapCursor.

Each object is one Tryton model (plus a domain) read with `search_read`, ordered by
`last_modified_at` (Tryton's SQL `COALESCE(write_date, create_date)`) then `id`, paged by
keyset (never by offset, so rows that move while paging are not skipped). Stamps are naive UTC
and are the *start* time of the writing transaction: a transaction that commits late makes
rows older than ones already read, so every poll re-reads `lag` seconds below the high-water
mark and drops the (id, stamp) pairs it already emitted.

A row also shows fields of related records (an employee's name is its party's): renaming the
party does not change the employee's stamp. Such objects `follow` the related model: each poll
also reads the related records changed in the window (with their own cursor) and reads again
the rows that point at them.

Hard deletes are invisible to polling: `current_keys(object)` lists the ids that exist now
(archived parties and employees included) and the hub's reconciliation turns missing ids into
deletes. Keys are Tryton ids as text; many-to-one fields are the target's id as text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors.tryton.client import Domain, TrytonClient
from connectors.tryton.sink import split_marker
from hub.spi import JSON, Batch, Change, ConnectorError, ObjectSchema, OverlapCursor

__all__ = ["OBJECTS", "TrytonObject", "TrytonSource"]

CHECKPOINT_VERSION = 1
_EPOCH = dt.datetime(1970, 1, 1)
_ORDER = (("last_modified_at", "ASC"), ("id", "ASC"))
_KEYS_PAGE = 10_000
_ALL = {"active_test": False}

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TrytonObject:
    """One source object: which records of which model, and how a row becomes a record.

    `fields` are the Avro fields (name, type) of the record, in order; `read` the Tryton field
    names to read (dotted `party.name` reads a related record's field). `follow` lists the
    (path, model) of the related records whose changes change the record (`("party",
    "party.party")` for `party.name`): their stamps are polled too.
    """

    name: str
    model: str
    domain: Domain
    read: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]
    convert: Callable[[Row], dict[str, Any]]
    context: Mapping[str, Any] = field(default_factory=dict)
    follow: tuple[tuple[str, str], ...] = ()

    def schema(self) -> ObjectSchema:
        avro = []
        for name, kind in self.fields:
            if kind.endswith("?"):
                avro.append({"name": name, "type": ["null", kind[:-1]], "default": None})
            else:
                avro.append({"name": name, "type": kind})
        record = {"type": "record", "name": f"tryton_{self.name}", "fields": avro}
        return ObjectSchema(object=self.name, key_field="id", schema=record)


# -- value conversions ---------------------------------------------------------------------


def _ref(value: Any) -> str | None:
    """A many-to-one id as text (None stays None)."""
    return None if value is None else str(value)


def _decimal(value: Any) -> str | None:
    return None if value is None else str(Decimal(value))


def _date(value: Any) -> str | None:
    return None if value is None else dt.date.isoformat(value)


def _seconds(value: Any) -> float | None:
    return None if value is None else float(dt.timedelta.total_seconds(value))


def _related(row: Row, name: str, attr: str) -> Any:
    """`attr` of the related record read as `name.attr` (Tryton answers `{name.: {...}}`)."""
    related = row.get(f"{name}.")
    return related.get(attr) if isinstance(related, Mapping) else None


def _grand(row: Row, name: str, via: str, attr: str) -> Any:
    """`attr` of the record related to the related one, read as `name.via.attr`."""
    related = row.get(f"{name}.")
    inner = related.get(f"{via}.") if isinstance(related, Mapping) else None
    return inner.get(attr) if isinstance(inner, Mapping) else None


def _first(values: Any) -> str | None:
    return str(values[0]) if values else None


def _root(row: Row) -> str | None:
    """The top work of a work's `path` ('12/15/'), or None for a work without a parent."""
    parts = [p for p in str(row.get("path") or "").split("/") if p]
    return parts[0] if parts and parts[0] != str(row["id"]) else None


# -- the objects ---------------------------------------------------------------------------


def _party(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "code": row["code"],
        "active": bool(row["active"]),
    }


def _employee(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "party": _ref(row["party"]),
        "name": _related(row, "party", "name"),
        "code": _related(row, "party", "code"),
        "company": _ref(row["company"]),
        "active": bool(row["active"]),
        "start_date": _date(row["start_date"]),
        "end_date": _date(row["end_date"]),
    }


def _project(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "number": row["number"],
        "parent": _ref(row["parent"]),
        "party": _ref(row["party"]),
        "customer_code": _related(row, "party", "code"),
        "company": _ref(row["company"]),
        "status": _related(row, "status", "name"),
        "project_invoice_method": row["project_invoice_method"],
        "list_price": _decimal(row["list_price"]),
        "effort_duration": _seconds(row["effort_duration"]),
        "timesheet_work": _first(row["timesheet_works"]),
    }


def _task(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "number": row["number"],
        "parent": _ref(row["parent"]),
        "project": _root(row),
        "project_name": _related(row, "parent", "name"),
        "customer_code": _grand(row, "parent", "party", "code"),
        "company": _ref(row["company"]),
        "status": _related(row, "status", "name"),
        "list_price": _decimal(row["list_price"]),
        "effort_duration": _seconds(row["effort_duration"]),
        "timesheet_work": _first(row["timesheet_works"]),
    }


def _origin_id(value: Any, model: str) -> str | None:
    """The id in a Reference value `"model,id"` when it points at `model`, else None."""
    if not isinstance(value, str) or "," not in value:
        return None
    name, _, number = value.partition(",")
    return number if name == model and number.strip().isdigit() else None


def _timesheet_line(row: Row) -> dict[str, Any]:
    description, marker = split_marker(row["description"])
    return {
        "id": str(row["id"]),
        "employee": _ref(row["employee"]),
        "date": _date(row["date"]),
        "duration": _seconds(row["duration"]),
        "work": _ref(row["work"]),
        "task": _origin_id(_related(row, "work", "origin"), "project.work"),
        "description": description,
        "synchub_marker": marker,
        "company": _ref(row["company"]),
        "invoice_line": _ref(row["invoice_line"]),
        "invoiced": row["invoice_line"] is not None,
    }


def _invoice(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "type": row["type"],
        "number": row["number"],
        "party": _ref(row["party"]),
        "company": _ref(row["company"]),
        "state": row["state"],
        "invoice_date": _date(row["invoice_date"]),
        "currency": _related(row, "currency", "code"),
        "untaxed_amount": _decimal(row["untaxed_amount"]),
        "tax_amount": _decimal(row["tax_amount"]),
        "total_amount": _decimal(row["total_amount"]),
        "amount_to_pay": _decimal(row["amount_to_pay"]),
    }


_WORK_READ = (
    "name",
    "number",
    "parent",
    "company",
    "status.name",
    "list_price",
    "effort_duration",
    "timesheet_works",
)

OBJECTS: dict[str, TrytonObject] = {
    o.name: o
    for o in (
        TrytonObject(
            "parties",
            "party.party",
            [],
            ("name", "code", "active"),
            (("id", "string"), ("name", "string?"), ("code", "string?"), ("active", "boolean")),
            _party,
            _ALL,
        ),
        TrytonObject(
            "employees",
            "company.employee",
            [],
            ("party", "party.name", "party.code", "company", "active", "start_date", "end_date"),
            (
                ("id", "string"),
                ("party", "string?"),
                ("name", "string?"),
                ("code", "string?"),
                ("company", "string?"),
                ("active", "boolean"),
                ("start_date", "string?"),
                ("end_date", "string?"),
            ),
            _employee,
            _ALL,
            (("party", "party.party"),),
        ),
        TrytonObject(
            "projects",
            "project.work",
            [("type", "=", "project")],
            (*_WORK_READ, "party", "party.code", "project_invoice_method"),
            (
                ("id", "string"),
                ("name", "string?"),
                ("number", "string?"),
                ("parent", "string?"),
                ("party", "string?"),
                ("customer_code", "string?"),
                ("company", "string?"),
                ("status", "string?"),
                ("project_invoice_method", "string?"),
                ("list_price", "string?"),
                ("effort_duration", "double?"),
                ("timesheet_work", "string?"),
            ),
            _project,
        ),
        TrytonObject(
            "tasks",
            "project.work",
            [("type", "=", "task")],
            (*_WORK_READ, "path", "parent.name", "parent.party.code"),
            (
                ("id", "string"),
                ("name", "string?"),
                ("number", "string?"),
                ("parent", "string?"),
                ("project", "string?"),
                ("project_name", "string?"),
                ("customer_code", "string?"),
                ("company", "string?"),
                ("status", "string?"),
                ("list_price", "string?"),
                ("effort_duration", "double?"),
                ("timesheet_work", "string?"),
            ),
            _task,
            follow=(("parent", "project.work"),),
        ),
        TrytonObject(
            "timesheet_lines",
            "timesheet.line",
            [],
            (
                "employee",
                "date",
                "duration",
                "work",
                "work.origin",
                "description",
                "company",
                "invoice_line",
            ),
            (
                ("id", "string"),
                ("employee", "string?"),
                ("date", "string?"),
                ("duration", "double?"),
                ("work", "string?"),
                ("description", "string?"),
                ("synchub_marker", "string?"),
                ("company", "string?"),
                ("invoice_line", "string?"),
                ("invoiced", "boolean"),
                ("task", "string?"),  # the project.work the line's timesheet work is for
            ),
            _timesheet_line,
        ),
        TrytonObject(
            "invoices",
            "account.invoice",
            [],
            (
                "type",
                "number",
                "party",
                "company",
                "state",
                "invoice_date",
                "currency.code",
                "untaxed_amount",
                "tax_amount",
                "total_amount",
                "amount_to_pay",
            ),
            (
                ("id", "string"),
                ("type", "string"),
                ("number", "string?"),
                ("party", "string?"),
                ("company", "string?"),
                ("state", "string"),
                ("invoice_date", "string?"),
                ("currency", "string?"),
                ("untaxed_amount", "string?"),
                ("tax_amount", "string?"),
                ("total_amount", "string?"),
                ("amount_to_pay", "string?"),
            ),
            _invoice,
        ),
    )
}


# -- stamps --------------------------------------------------------------------------------


def stamp_us(stamp: dt.datetime) -> float:
    """A naive UTC stamp as epoch microseconds (an integral float: exact, so keys compare)."""
    return float((stamp - _EPOCH) // dt.timedelta(microseconds=1))


def from_us(us: float) -> dt.datetime:
    """Inverse of `stamp_us`."""
    return _EPOCH + dt.timedelta(microseconds=int(us))


def _follow_name(obj: TrytonObject, path: str) -> str:
    """The checkpoint entry of the cursor over `obj`'s related records at `path`."""
    return f"{obj.name}<{path}"


# -- the source ----------------------------------------------------------------------------


class TrytonSource:
    """Source over the objects of `OBJECTS` (or the subset named in `objects`).

    The checkpoint is `{"version": 1, "objects": {name: OverlapCursor JSON}}` with stamps in
    epoch microseconds; `name` is an object, or `<object><<path>` for the related records it
    follows (e.g. `employees<party`).
    """

    def __init__(
        self,
        system: str,
        client: TrytonClient,
        *,
        lag: float = 60.0,
        page_size: int = 500,
        objects: list[str] | None = None,
    ) -> None:
        self.system = system
        self.client = client
        self.lag_us = lag * 1_000_000
        self.page_size = page_size
        unknown = sorted(set(objects or ()) - set(OBJECTS))
        if unknown:
            raise ConnectorError(
                f"connector {system!r} (tryton) has no objects {unknown}; its objects are "
                f"{sorted(OBJECTS)}"
            )
        self.objects = [OBJECTS[n] for n in (objects or OBJECTS)]

    def discover(self) -> list[ObjectSchema]:
        return [o.schema() for o in self.objects]

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        """Changes of every object after `checkpoint`, object by object, in stamp order.

        A poll that finds nothing new yields no batch (the checkpoint would not move).
        """
        cursors = self._load(checkpoint)
        pending: list[Change] = []
        last: JSON = self._dump(cursors)
        for obj in self.objects:
            for change in self._poll_object(obj, cursors):
                pending.append(change)
                if len(pending) >= batch_size:
                    last = self._dump(cursors)
                    yield Batch(tuple(pending), last)
                    pending = []
        final = self._dump(cursors)
        if pending or final != last:
            yield Batch(tuple(pending), final)

    def current_keys(self, object: str) -> set[str] | None:
        """Every id of `object` that exists now (archived records included)."""
        obj = self._object(object)
        keys: set[str] = set()
        after = 0
        while True:
            ids = self.client.search(
                obj.model,
                [*obj.domain, ("id", ">", after)],
                limit=_KEYS_PAGE,
                order=[("id", "ASC")],
                context=obj.context,
            )
            keys.update(str(i) for i in ids)
            if len(ids) < _KEYS_PAGE:
                return keys
            after = ids[-1]

    def close(self) -> None:
        self.client.close()

    # -- polling ----------------------------------------------------------------------------

    def _poll_object(
        self, obj: TrytonObject, cursors: Mapping[str, OverlapCursor]
    ) -> Iterator[Change]:
        """The object's rows changed through a related record, then the rows changed themselves
        (in that order: a related change made after the object's rows were read is caught)."""
        for path, model in obj.follow:
            yield from self._follow(obj, path, model, cursors[_follow_name(obj, path)])
        yield from self._poll(obj, cursors[obj.name])

    def _poll(self, obj: TrytonObject, cursor: OverlapCursor) -> Iterator[Change]:
        """Rows with stamp >= cursor.since(), keyset-paged, admitted through the cursor."""
        for rows in self._pages(obj.model, obj.domain, obj.read, cursor.since(), obj.context):
            for row in rows:
                stamp: dt.datetime = row["last_modified_at"]
                key = str(row["id"])
                if cursor.admit(key, stamp.isoformat(), stamp_us(stamp)):
                    yield self._change(obj, key, stamp, row)

    def _follow(
        self, obj: TrytonObject, path: str, model: str, cursor: OverlapCursor
    ) -> Iterator[Change]:
        """The rows of `obj` whose related record at `path` (of `model`) changed after `cursor`.

        A related record is admitted only after the rows pointing at it were yielded, so a
        checkpoint never covers a related change whose rows are still to come. On the first poll
        of a relation the object's own pass reads every row anyway: only the mark is set.
        """
        baseline = cursor.since() is None
        for related in self._pages(model, [], (), cursor.since(), _ALL):
            fresh = [
                (str(r["id"]), r["last_modified_at"])
                for r in related
                if cursor.seen.get(str(r["id"]), ("", 0.0))[0] != r["last_modified_at"].isoformat()
            ]
            if fresh and not baseline:
                yield from self._pointing_at(obj, path, [int(k) for k, _ in fresh])
            for key, stamp in fresh:
                cursor.admit(key, stamp.isoformat(), stamp_us(stamp))

    def _pointing_at(self, obj: TrytonObject, path: str, ids: list[int]) -> Iterator[Change]:
        """The rows of `obj` whose `path` is one of `ids`, paged by id."""
        fields = (*obj.read, "last_modified_at")
        domain = [*obj.domain, (path, "in", ids)]
        after = 0
        while True:
            rows = self.client.search_read(
                obj.model,
                [*domain, ("id", ">", after)],
                fields,
                limit=self.page_size,
                order=[("id", "ASC")],
                context=obj.context,
            )
            for row in rows:
                yield self._change(obj, str(row["id"]), row["last_modified_at"], row)
            if len(rows) < self.page_size:
                return
            after = int(rows[-1]["id"])

    def _pages(
        self,
        model: str,
        domain: Domain,
        fields: tuple[str, ...],
        since: float | None,
        context: Mapping[str, Any],
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of the rows of `model` with stamp >= `since`, in (stamp, id) order, by keyset."""
        base = list(domain)
        if since is not None:
            base.append(("last_modified_at", ">=", from_us(since)))
        fields = (*fields, "last_modified_at")
        after: tuple[dt.datetime, int] | None = None
        while True:
            where = (
                base
                if after is None
                else [
                    *base,
                    [
                        "OR",
                        ("last_modified_at", ">", after[0]),
                        [("last_modified_at", "=", after[0]), ("id", ">", after[1])],
                    ],
                ]
            )
            rows = self.client.search_read(
                model, where, fields, limit=self.page_size, order=_ORDER, context=context
            )
            yield rows
            if len(rows) < self.page_size:
                return
            after = (rows[-1]["last_modified_at"], int(rows[-1]["id"]))

    def _change(self, obj: TrytonObject, key: str, stamp: dt.datetime, row: Row) -> Change:
        position = stamp.isoformat()
        when = stamp.replace(tzinfo=dt.UTC)
        try:
            record = obj.convert(row)
        except (KeyError, TypeError, ValueError, ArithmeticError) as e:
            raw = json.dumps(dict(row), default=str, sort_keys=True)
            problem = (
                f"{obj.model} {key} cannot be turned into a {obj.name} record "
                f"({type(e).__name__}: {e}); the Tryton modules may have changed"
            )
            return Change(obj.name, key, "upsert", None, position, when, error=problem, raw=raw)
        return Change(obj.name, key, "upsert", record, position, when)

    # -- checkpoints ------------------------------------------------------------------------

    def _load(self, checkpoint: JSON | None) -> dict[str, OverlapCursor]:
        saved: dict[str, Any] = {}
        if checkpoint is not None:
            try:
                if checkpoint["version"] != CHECKPOINT_VERSION:
                    raise ValueError(f"version {checkpoint['version']!r}")
                saved = dict(checkpoint["objects"])
            except (KeyError, TypeError, ValueError) as e:
                raise ConnectorError(
                    f"connector {self.system!r} (tryton): the stored checkpoint is not a tryton "
                    f"checkpoint version {CHECKPOINT_VERSION} ({e!r}); reset this connector's "
                    "checkpoint to read from the start"
                ) from None
        names = [o.name for o in self.objects]
        names += [_follow_name(o, path) for o in self.objects for path, _ in o.follow]
        return {name: OverlapCursor.from_json(saved.get(name), self.lag_us) for name in names}

    @staticmethod
    def _dump(cursors: Mapping[str, OverlapCursor]) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "objects": {name: c.to_json() for name, c in cursors.items()},
        }

    def _object(self, name: str) -> TrytonObject:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise ConnectorError(
            f"connector {self.system!r} (tryton) has no object {name!r}; its objects are "
            f"{[o.name for o in self.objects]}"
        )
