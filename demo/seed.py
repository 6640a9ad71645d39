"""The demo firm's data: seeded into Tryton (over JSON-RPC) and TimeTagger (over its API),
the way the firm's people would enter it."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.timetagger.client import TimeTaggerClient
from connectors.tryton.client import TrytonClient

CONSULTANTS = {"alice": "Alice Archer", "bob": "Bob Baker", "carol": "Carol Chen"}
CUSTOMERS = {"acme": "Acme Corp", "globex": "Globex Ltd"}
PROJECTS: dict[str, dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]]] = {
    # customer → project → (hourly rate, tasks, closed tasks)
    "acme": {"Website relaunch": (150, ("Design", "Build", "Launch"), ("Launch",))},
    "globex": {"Data platform": (180, ("Discovery", "Pipeline"), ("Discovery",))},
}


def seed_erp(c: TrytonClient) -> dict[str, int]:
    """Employees (party code = handle), customers, projects with tasks; some tasks closed."""
    company = c.context["company"]
    (product,) = c.search("product.product", [("code", "=", "CONSULT-H")])
    counts = {"employees": 0, "projects": 0, "tasks": 0}
    for handle, name in CONSULTANTS.items():
        (party,) = c.create("party.party", [{"name": name, "code": handle}])
        c.create("company.employee", [{"party": party, "company": company}])
        counts["employees"] += 1
    done = c.search("project.work.status", [("name", "=", "Done")])
    for code, customer in CUSTOMERS.items():
        (party,) = c.create(
            "party.party",
            [
                {
                    "name": customer,
                    "code": code,
                    "addresses": [("create", [{"street": "1 Main St", "city": "Springfield"}])],
                }
            ],
        )
        for project, (rate, tasks, closed) in PROJECTS[code].items():
            (work,) = c.create(
                "project.work",
                [
                    {
                        "name": project,
                        "type": "project",
                        "company": company,
                        "party": party,
                        "project_invoice_method": "timesheet",
                        "product": product,
                        "list_price": Decimal(rate),
                        "timesheet_available": True,
                        "children": [
                            (
                                "create",
                                [
                                    {
                                        "name": task,
                                        "type": "task",
                                        "company": company,
                                        "product": product,
                                        "list_price": Decimal(rate),
                                        "timesheet_available": True,
                                        "effort_duration": dt.timedelta(hours=16),
                                    }
                                    for task in tasks
                                ],
                            )
                        ],
                    }
                ],
            )
            counts["projects"] += 1
            counts["tasks"] += len(tasks)
            children = c.read("project.work", [work], ["children"])[0]["children"]
            for row in c.read("project.work", children, ["name"]):
                if row["name"] in closed and done:
                    c.write("project.work", [row["id"]], {"progress": 1.0, "status": done[0]})
    return counts


@dataclass(frozen=True)
class Entry:
    """One time entry a consultant books: what the demo expects synchub to do with it."""

    person: str
    day: int  # days before today
    hours: float
    text: str
    expect: str  # posted | not approved | refused: <why> | mapping error

    def record(self, today: dt.date) -> dict[str, Any]:
        start = dt.datetime.combine(today - dt.timedelta(days=self.day), dt.time(9), dt.UTC)
        t1 = int(start.timestamp())
        return {
            "key": uuid.uuid4().hex[:12],
            "t1": t1,
            "t2": t1 + int(self.hours * 3600),
            "ds": self.text,
            "mt": t1 + 60,
            "st": 0.0,
        }


WEEK = [
    Entry(
        "alice", 4, 3.0, "wireframes #acme/website-relaunch/design #billable #approved", "posted"
    ),
    Entry(
        "alice", 3, 4.5, "design review #acme/website-relaunch/design #billable #approved", "posted"
    ),
    Entry("alice", 2, 6.0, "components #acme/website-relaunch/build #billable #approved", "posted"),
    Entry("alice", 1, 2.0, "polish #acme/website-relaunch/build #billable", "not approved"),
    Entry(
        "bob", 4, 7.5, "ingest jobs #globex/data-platform/pipeline #billable #approved", "posted"
    ),
    Entry("bob", 3, 5.0, "backfill #globex/data-platform/pipeline #billable #approved", "posted"),
    Entry(
        "bob",
        2,
        2.0,
        "interviews #globex/data-platform/discovery #billable #approved",
        "refused: the task is closed",
    ),
    Entry(
        "bob",
        1,
        1.5,
        "go-live prep #acme/website-relaunch/launch #approved",
        "refused: the task is closed",
    ),
    Entry(
        "carol",
        4,
        4.0,
        "QA #acme/website-relaunch/qa #billable #approved",
        "refused: the task does not exist",
    ),
    Entry("carol", 3, 3.0, "tests #acme//build #approved", "mapping error: malformed tag"),
    Entry(
        "carol", 2, 0.0, "standup #acme/website-relaunch/build #approved", "refused: zero duration"
    ),
    Entry(
        "carol",
        -2,
        2.0,
        "planned work #acme/website-relaunch/build #approved",
        "refused: in the future",
    ),
    Entry(
        "carol", 1, 5.0, "build sprint #acme/website-relaunch/build #billable #approved", "posted"
    ),
]


def seed_tracker(clients: dict[str, TimeTaggerClient], today: dt.date) -> dict[str, int]:
    """Book the week's entries in each consultant's own TimeTagger account."""
    counts: dict[str, int] = {}
    for entry in WEEK:
        clients[entry.person].put_records([entry.record(today)])
        counts[entry.person] = counts.get(entry.person, 0) + 1
    return counts
