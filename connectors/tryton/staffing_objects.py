"""Who is staffed where: the ERP's project allocations (the `project_plan` module).

- `assignments` (`project.allocation`): an employee allocated to a project or task, with a
  percentage. `employee_code` is the employee's party code (the consultant's handle);
  `project` is the work's project (the work itself when it is a project, else its parent),
  with its `project_name` and `customer_code` (its party's code), so a mapping can name the
  canonical project the same way the `projects` object does.

Same conventions as objects.py: keys are Tryton ids as text, a many-to-one is the target's id
as text.
"""

from __future__ import annotations

from typing import Any

from connectors.tryton.objects_base import Row, TrytonObject, grand, ref, related

__all__ = ["STAFFING_OBJECTS"]


def _assignment(row: Row) -> dict[str, Any]:
    is_project = related(row, "work", "type") == "project"
    if is_project:
        project = ref(row["work"])
        name, customer = related(row, "work", "name"), grand(row, "work", "party", "code")
    else:
        project = ref(related(row, "work", "parent"))
        name = grand(row, "work", "parent", "name")
        customer = None
        work = row.get("work.")
        parent = work.get("parent.") if isinstance(work, dict) else None
        party = parent.get("party.") if isinstance(parent, dict) else None
        if isinstance(party, dict):
            customer = party.get("code")
    return {
        "id": str(row["id"]),
        "employee": ref(row["employee"]),
        "employee_code": grand(row, "employee", "party", "code"),
        "work": ref(row["work"]),
        "project": project,
        "project_name": name,
        "customer_code": customer,
        "percentage": None if row["percentage"] is None else float(row["percentage"]),
    }


STAFFING_OBJECTS = (
    TrytonObject(
        "assignments",
        "project.allocation",
        [],
        (
            "employee",
            "employee.party.code",
            "work",
            "work.type",
            "work.name",
            "work.party.code",
            "work.parent",
            "work.parent.name",
            "work.parent.party.code",
            "percentage",
        ),
        (
            ("id", "string"),
            ("employee", "string?"),
            ("employee_code", "string?"),
            ("work", "string?"),
            ("project", "string?"),
            ("project_name", "string?"),
            ("customer_code", "string?"),
            ("percentage", "double?"),
        ),
        _assignment,
        follow=(("employee", "company.employee"), ("work", "project.work")),
    ),
)
"""The ERP's project allocations, by object."""
