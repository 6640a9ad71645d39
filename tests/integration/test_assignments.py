"""Project tags follow staffing, against real Tryton and TimeTagger: a project's tags (and its
tasks') are published to the TimeTagger accounts of the consultants allocated to it in the ERP
(`project.allocation`), withdrawn from one taken off it, and an allocation of someone without
an account is an exception that names the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.timetagger.localserver import TimeTaggerServer
from tests.connectors.timetagger.conftest import timetagger_python, timetagger_server  # noqa: F401
from tests.connectors.tryton.conftest import TrytonDB, tryton_db, tryton_session  # noqa: F401
from tests.integration.test_workflows import MAPPING, Firm

STAFFED = (
    "$key | canonical Project | values_of Assignment project_id person_id active true | id_part"
)
"""The handles of the people allocated to the project (a Project's taginfo rule)."""


def staffing_mapping() -> dict[str, Any]:
    """The demo's mapping with the ERP's allocations, publishing tags to the people on them."""
    doc: dict[str, Any] = yaml.safe_load(MAPPING.read_text())
    doc["entities"]["Assignment"] = {"owner": "erp"}
    doc["sources"].append(
        {
            "system": "erp",
            "object": "assignments",
            "entity": "Assignment",
            "id": "$key",
            "fields": {
                "person_id": "employee_code | canonical Person",
                "project_id": '"{customer_code}/{project_name}" | slug | canonical Project',
                "role": "'consultant'",
                "active": "true",
            },
        }
    )
    project, task = [t for t in doc["targets"] if t["object"] == "taginfo"]
    project["fields"]["people"] = STAFFED
    task["fields"]["people"] = (
        "project_id | values_of Assignment project_id person_id active true | id_part"
    )
    return doc


class StaffedFirm(Firm):
    def __init__(self, tmp: Path, erp: TrytonDB, tt: TimeTaggerServer) -> None:
        super().__init__(tmp, erp, tt)
        (tmp / "mapping.yaml").write_text(yaml.safe_dump(staffing_mapping()))
        config = yaml.safe_load(self.config.read_text())
        config["connectors"]["erp"]["objects"] = [
            "employees", "projects", "tasks", "timesheet_lines", "assignments",
        ]  # fmt: skip
        self.config.write_text(yaml.safe_dump(config))

    def employee(self, code: str) -> int:
        (found,) = self.erp.search("company.employee", [("party.code", "=", code)])
        return int(found)

    def project(self, name: str) -> int:
        (found,) = self.erp.search("project.work", [("name", "=", name), ("type", "=", "project")])
        return int(found)

    def allocate(self, code: str, project: str) -> int:
        values = {"employee": self.employee(code), "work": self.project(project)}
        (allocation,) = self.erp.create("project.allocation", [{**values, "percentage": 50.0}])
        return int(allocation)

    def tags(self, person: str) -> dict[str, str]:
        """The live taginfo tags of `person`'s account → their status."""
        out = {}
        for setting in self.clients[person].settings():
            key, value = str(setting.get("key", "")), setting.get("value")
            live = isinstance(value, dict) and value.get("status") != "deleted"
            if key.startswith("taginfo #") and live:
                out[key.removeprefix("taginfo #")] = str(value.get("status"))
        return out


@pytest.fixture
def firm(tmp_path: Path, tryton_db: TrytonDB, timetagger_server: TimeTaggerServer) -> StaffedFirm:  # noqa: F811
    return StaffedFirm(tmp_path, tryton_db, timetagger_server)


def test_project_tags_reach_the_consultants_on_the_project_only(firm: StaffedFirm) -> None:
    website = "acme/website-relaunch"
    firm.allocate("alice", "Website relaunch")
    firm.sync()
    firm.sync()
    alice, bob = firm.tags("alice"), firm.tags("bob")
    assert website in alice and f"{website}/design" in alice
    assert not any(t.startswith(website) for t in bob)  # bob is not on the project
    assert [x for x in firm.exceptions() if x["kind"] != "plan"] == []
    firm.assert_idle()

    bob_on = firm.allocate("bob", "Website relaunch")  # bob joins
    firm.sync()
    firm.sync()
    assert website in firm.tags("bob") and f"{website}/build" in firm.tags("bob")
    firm.assert_idle()

    firm.erp.delete("project.allocation", [bob_on])  # and leaves again
    firm.sync()
    firm.sync()
    assert not any(t.startswith(website) for t in firm.tags("bob"))
    assert website in firm.tags("alice")
    firm.assert_idle()

    (zoe,) = firm.erp.create("party.party", [{"name": "Zoe Zed", "code": "zoe"}])
    firm.erp.create("company.employee", [{"party": zoe, "company": 1}])
    firm.allocate("zoe", "Website relaunch")  # staffed, but has no TimeTagger account
    firm.sync()
    firm.sync()
    missing = [x for x in firm.exceptions() if "no TimeTagger account for ['zoe']" in x["message"]]
    assert missing and all(x["kind"] == "write" for x in missing)
    assert website in firm.tags("alice")  # the others keep their tags
