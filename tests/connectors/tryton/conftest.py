"""A real Tryton server per test session, and a fresh database (a copy of the golden one) per test.

The first run on a machine installs Tryton into `.services/tryton-venv` and bakes the golden
database (about a minute, cached); later runs start the server in about a second and give each
test its own database in about a second more.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.tryton.client import TrytonClient
from connectors.tryton.localserver import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    TrytonServer,
    ensure_installed,
    golden_database,
)

ROOT = Path(__file__).resolve().parents[3]
_names = itertools.count(1)


@dataclass(frozen=True)
class Session:
    server: TrytonServer
    golden: Path


@dataclass(frozen=True)
class TrytonDB:
    """One fresh database on the session's server."""

    url: str
    database: str
    dbfile: Path

    def options(self, **extra: Any) -> dict[str, Any]:
        """Connector options for this database (as a config section would give them)."""
        return {
            "url": self.url,
            "database": self.database,
            "user": ADMIN_USER,
            "password": ADMIN_PASSWORD,
            **extra,
        }

    def client(self) -> TrytonClient:
        return TrytonClient(self.url, self.database, ADMIN_USER, ADMIN_PASSWORD)

    def captured(self, tmp: Path, obj: str, key: str, **options: Any) -> dict[str, Any] | None:
        """The record `obj` `key` as a fresh source of this database captures it (for the sink
        contract's read_back check); `options` as a config section's (e.g. profile)."""
        from connectors.tryton import TrytonConnector

        source = TrytonConnector("db", self.options(objects=[obj], **options), tmp).source()
        try:
            for batch in source.read(None, 1000):
                for change in batch.changes:
                    if change.key == key:
                        return dict(change.record or {})
        finally:
            source.close()
        return None


class TrytonSinkCase:
    """What the Tryton sink contract classes share: a fresh ERP database per test (a CRM one
    when `profile` is crm: override `_database`), the sink of it, the same sink after a
    restart, the record as the source captures it, and the writes counted by RPC method."""

    profile = "erp"
    writes: tuple[str, ...] = ()
    """The RPC methods that write (e.g. model.party.party.create)."""
    db: TrytonDB
    tmp: Path

    @pytest.fixture(autouse=True)
    def _database(self, tryton_db: TrytonDB) -> None:
        self.db = tryton_db

    def open_sink(self, tmp_path: Path) -> Any:
        from connectors.tryton import TrytonConnector

        self.tmp = tmp_path
        return TrytonConnector("db", self.db.options(profile=self.profile), tmp_path).sink()

    def reopen(self, sink: Any, tmp_path: Path) -> Any:
        return self.open_sink(tmp_path)

    def captured(self, sink: Any, target_key: str) -> dict[str, Any] | None:
        obj: str = self.object_name
        return self.db.captured(self.tmp, obj, target_key, profile=self.profile)

    def count(self, sink: Any) -> int:
        return sum(sink.client.calls[m] for m in self.writes)


@pytest.fixture(scope="session")
def tryton_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    python = ensure_installed(ROOT)
    golden = golden_database(ROOT)
    with TrytonServer(python, tmp_path_factory.mktemp("tryton") / "db") as server:
        yield Session(server, golden)


@pytest.fixture
def tryton_db(tryton_session: Session) -> TrytonDB:
    name = f"t{next(_names)}"
    tryton_session.server.add_database(name, tryton_session.golden)
    return TrytonDB(tryton_session.server.url, name, tryton_session.server.dbdir / f"{name}.sqlite")


@pytest.fixture(scope="session")
def crm_golden(tryton_session: Session) -> Path:
    """The golden CRM database (built on first use, ~35 s, then cached like the ERP's)."""
    return golden_database(ROOT, "crm")


@pytest.fixture
def crm_db(tryton_session: Session, crm_golden: Path) -> TrytonDB:
    """A fresh CRM database (a copy of the golden one) on the session's server."""
    name = f"crm{next(_names)}"
    tryton_session.server.add_database(name, crm_golden)
    return TrytonDB(tryton_session.server.url, name, tryton_session.server.dbdir / f"{name}.sqlite")


class Erp:
    """Builds the professional-services world over RPC, as a user of Tryton would."""

    def __init__(self, client: TrytonClient) -> None:
        self.c = client
        self.company: int = client.context["company"]
        (self.product,) = client.search("product.product", [("code", "=", "CONSULT-H")])

    def employee(self, name: str = "Jane Consultant") -> int:
        (party,) = self.c.create("party.party", [{"name": name}])
        (employee,) = self.c.create("company.employee", [{"party": party, "company": self.company}])
        return employee

    def customer(self, name: str = "Customer Ltd") -> int:
        (party,) = self.c.create(
            "party.party",
            [
                {
                    "name": name,
                    "addresses": [("create", [{"street": "1 Main St", "city": "Springfield"}])],
                }
            ],
        )
        return party

    def project(
        self, customer: int, tasks: tuple[str, ...] = ("Design", "Build"), name: str = "Web"
    ) -> tuple[int, list[int]]:
        """A timesheet-invoiced project with its tasks: (project id, task ids)."""
        (project,) = self.c.create(
            "project.work",
            [
                {
                    "name": name,
                    "type": "project",
                    "company": self.company,
                    "party": customer,
                    "project_invoice_method": "timesheet",
                    "product": self.product,
                    "list_price": Decimal(150),
                    "timesheet_available": True,
                    "children": [("create", [self.task_values(t) for t in tasks])],
                }
            ],
        )
        (row,) = self.c.read("project.work", [project], ["children"])
        return project, list(row["children"])

    def task_values(self, name: str, parent: int | None = None) -> dict[str, Any]:
        values = {
            "name": name,
            "type": "task",
            "company": self.company,
            "product": self.product,
            "list_price": Decimal(120),
            "timesheet_available": True,
            "effort_duration": dt.timedelta(hours=8),
        }
        return values if parent is None else {**values, "parent": parent}

    def timesheet_work(self, work: int) -> int:
        (row,) = self.c.read("project.work", [work], ["timesheet_works"])
        return int(row["timesheet_works"][0])

    def line(
        self,
        employee: int,
        tsw: int,
        hours: float,
        description: str | None = None,
        date: dt.date | None = None,
    ) -> int:
        (line,) = self.c.create(
            "timesheet.line",
            [
                {
                    "employee": employee,
                    "work": tsw,
                    "date": date or dt.date.today(),
                    "duration": dt.timedelta(hours=hours),
                    "description": description,
                }
            ],
        )
        return line

    def invoice(self, project: int) -> list[int]:
        """Invoice the project's timesheets (button 'invoice'); the draft invoice ids."""
        self.c.button("project.work", "invoice", [project])
        return self.c.search("account.invoice", [])

    def count(self, model: str, domain: list[Any] | None = None) -> int:
        return len(self.c.search(model, domain or []))
