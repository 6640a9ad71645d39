"""Writing ERP projects (`project.work` of type project) with their tasks: the `projects`
object of the Tryton ERP sink (used by the deal-to-project workflow).

Fields of a `projects` delta:

- `name` (text; required to create), `party` (party.party id: the customer), `company`
  (company.company id: the legal entity; default the login's company), `invoice_method`
  (`timesheet`, `effort`, `progress` or `manual`; default `timesheet`), `list_price` (the
  hourly rate, a decimal), `product` (the code of the hourly service product the work is
  invoiced with, e.g. `CONSULT-H`), `description` (text);
- `tasks`: the tasks to create under it, a list of names or of `{name, hours}` (planned
  effort). An update adds the tasks that are missing by name and never removes one (time may
  be booked on it); tasks are created open for time, with the project's rate and product.

Idempotency: a create puts the marker of its target record (object and canonical id) at the
end of the project's comment and first searches for it, in the project's company: a project
that has it is the one created before, and is only brought to the desired fields. Every write
is read back; a project that does not hold what was written is retryable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.tryton.client import TrytonClient
from connectors.tryton.lines import Refused, create_marker, split_marker, target_id, tryton_id
from connectors.tryton.outcomes import Mismatch
from hub.spi import Delta

__all__ = ["PROJECT_FIELDS", "ProjectWriter", "project_read_back"]

MODEL = "project.work"
PROJECT_FIELDS = (
    "name",
    "party",
    "company",
    "invoice_method",
    "list_price",
    "product",
    "description",
    "tasks",
)
INVOICE_METHODS = ("timesheet", "effort", "progress", "manual")
_READ = (
    "name",
    "party",
    "company",
    "project_invoice_method",
    "list_price",
    "product",
    "comment",
    "children",
)


def project_read_back(record: Mapping[str, Any]) -> dict[str, Any]:
    """A captured `projects` record (objects.py) in the fields a delta is written in."""
    out: dict[str, Any] = {}
    for name in ("name", "party", "company"):
        if name in record:
            out[name] = record[name]
    if "project_invoice_method" in record:
        out["invoice_method"] = record["project_invoice_method"]
    if record.get("list_price") is not None:
        out["list_price"] = float(record["list_price"])
    return out


class ProjectWriter:
    """Creates, updates and deletes projects for the ERP sink (one delta at a time)."""

    def __init__(self, client: TrytonClient) -> None:
        self.client = client
        self._products: dict[str, int] = {}

    def create(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        values, tasks = self._values(delta.fields, create=True)
        mark = create_marker(delta)
        ctx = self._context(values)
        found = self.client.search(
            MODEL, [("type", "=", "project"), ("comment", "like", f"%{mark}")], context=ctx
        )
        if found:
            changed = self._converge(found[0], values, tasks, mark, ctx)
            return str(found[0]), {"marker": mark, "existing": True, "changed": changed}
        values["comment"] = _with_marker(values.pop("description", None), mark)
        values["children"] = [("create", [self._task(t, values) for t in tasks])] if tasks else []
        (project,) = self.client.create(
            MODEL, [{**values, "type": "project", "timesheet_available": True}], context=ctx
        )
        self._verify(project, values, [t["name"] for t in tasks], ctx)
        return str(project), {"marker": mark, "tasks": [t["name"] for t in tasks]}

    def update(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        project = target_id(delta)
        values, tasks = self._values(delta.fields, create=False)
        ctx = self._context(values)
        changed = self._converge(project, values, tasks, None, ctx)
        return str(project), {"changed": changed}

    def delete(self, delta: Delta) -> tuple[str, dict[str, Any]]:
        project = target_id(delta)
        if not self.client.search(MODEL, [("id", "=", project)]):
            return str(project), {"already_deleted": True}
        self.client.delete(MODEL, [project])
        return str(project), {}

    # -- values ---------------------------------------------------------------------------------

    def _values(
        self, fields: Mapping[str, Any], *, create: bool
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        unknown = sorted(set(fields) - set(PROJECT_FIELDS))
        if unknown:
            raise Refused(
                f"unknown projects fields {unknown}; the fields are {list(PROJECT_FIELDS)}"
            )
        values: dict[str, Any] = {}
        if "name" in fields:
            if not isinstance(fields["name"], str) or not fields["name"].strip():
                raise Refused(f"a project's name must be non-empty text, got {fields['name']!r}")
            values["name"] = fields["name"].strip()
        elif create:
            raise Refused("a new project needs a `name`")
        for name in ("party", "company"):
            if fields.get(name) is not None:
                values[name] = tryton_id(name, fields[name])
        method = fields.get("invoice_method", "timesheet" if create else None)
        if method is not None:
            if method not in INVOICE_METHODS:
                raise Refused(
                    f"invoice_method must be one of {list(INVOICE_METHODS)}, got {method!r}"
                )
            values["project_invoice_method"] = method
        if fields.get("list_price") is not None:
            values["list_price"] = _amount(fields["list_price"])
        if fields.get("product") is not None:
            values["product"] = self._product(str(fields["product"]))
        if "description" in fields:
            values["description"] = fields["description"]
        return values, _tasks(fields.get("tasks"))

    def _product(self, code: str) -> int:
        if code not in self._products:
            found = self.client.search("product.product", [("code", "=", code)])
            if not found:
                raise Refused(
                    f"no product with code {code!r} in Tryton: create the hourly service product "
                    "or fix `product` in the mapping"
                )
            self._products[code] = found[0]
        return self._products[code]

    def _task(self, task: Mapping[str, Any], project: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": task["name"],
            "type": "task",
            "timesheet_available": True,
        }
        for name in ("company", "product", "list_price"):
            if project.get(name) is not None:
                values[name] = project[name]
        if task.get("hours") is not None:
            values["effort_duration"] = dt.timedelta(hours=float(task["hours"]))
        return values

    @staticmethod
    def _context(values: Mapping[str, Any]) -> dict[str, Any] | None:
        """Act in the project's company (Tryton's company rules and domains need it)."""
        return {"company": values["company"]} if "company" in values else None

    # -- convergence ----------------------------------------------------------------------------

    def _converge(
        self,
        project: int,
        values: dict[str, Any],
        tasks: list[dict[str, Any]],
        mark: str | None,
        ctx: dict[str, Any] | None,
    ) -> list[str]:
        current = self._read(project, ctx)
        if current is None:
            raise Refused(
                f"project {project} does not exist in Tryton (deleted there?); re-create it or "
                "resolve the record's link"
            )
        wanted = dict(values)
        if "description" in wanted or mark is not None:
            text, digest = split_marker(current["comment"])
            keep = mark or (f"[synchub:{digest}]" if digest else None)
            described = wanted.pop("description", text)
            wanted["comment"] = _with_marker(described, keep)
        diff = {k: v for k, v in wanted.items() if current.get(k) != v}
        existing = {row["name"] for row in self._children(current["children"], ctx)}
        missing = [t for t in tasks if t["name"] not in existing]
        if missing:
            diff["children"] = [("create", [self._task(t, {**current, **values}) for t in missing])]
        if diff:
            self.client.write(MODEL, [project], diff, context=ctx)
            self._verify(project, wanted, [t["name"] for t in missing], ctx)
        return sorted(k if k != "children" else "tasks" for k in diff)

    def _verify(
        self, project: int, values: Mapping[str, Any], tasks: list[str], ctx: dict[str, Any] | None
    ) -> None:
        current = self._read(project, ctx)
        if current is None:
            raise Mismatch(f"Tryton answered success but project {project} cannot be read back")
        wrong = sorted(k for k, v in values.items() if k != "children" and current.get(k) != v)
        names = {row["name"] for row in self._children(current["children"], ctx)}
        if wrong or not set(tasks) <= names:
            raise Mismatch(
                f"Tryton answered success but project {project} reads back with different "
                f"{', '.join(wrong) or 'tasks'}; will retry"
            )

    def _read(self, project: int, ctx: dict[str, Any] | None) -> dict[str, Any] | None:
        rows = self.client.search_read(MODEL, [("id", "=", project)], _READ, context=ctx)
        return rows[0] if rows else None

    def _children(self, ids: list[int], ctx: dict[str, Any] | None) -> list[dict[str, Any]]:
        return self.client.read(MODEL, ids, ["name"], context=ctx) if ids else []


def _tasks(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Refused(f"tasks must be a list of names or of {{name, hours}}, got {value!r}")
    out: list[dict[str, Any]] = []
    for item in value:
        task = {"name": item} if isinstance(item, str) else item
        if (
            not isinstance(task, Mapping)
            or not isinstance(task.get("name"), str)
            or not task["name"]
        ):
            raise Refused(f"a task is a name or {{name, hours}}, got {item!r}")
        hours = task.get("hours")
        if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int | float)):
            raise Refused(f"task {task['name']!r}: hours must be a number, got {hours!r}")
        out.append({"name": task["name"], "hours": hours})
    names = [t["name"] for t in out]
    if len(set(names)) != len(names):
        raise Refused(f"task names must be unique in a project, got {names}")
    return out


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise Refused(f"list_price must be an amount, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise Refused(f"list_price must be a finite amount >= 0, got {value!r}")
    return amount.quantize(Decimal("0.0001"))


def _with_marker(text: str | None, mark: str | None) -> str | None:
    if mark is None:
        return text
    return f"{text}\n{mark}" if text else mark
