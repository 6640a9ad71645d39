"""A small consulting firm's export folder and a config, for end-to-end runs of the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

PEOPLE = ["ann", "bob", "cem", "dia"]


def config_for(root: Path) -> dict[str, Any]:
    return {
        "store": {"path": "./synchub.db"},
        "mapping": "./mapping.yaml",
        "connectors": {
            "tracker": {
                "type": "filedrop",
                "directory": "./inbox",
                "objects": {
                    "time_entries": {
                        "pattern": "time_*.csv",
                        "key": "id",
                        "fields": {
                            "id": "string",
                            "person": "string",
                            "day": "string",
                            "minutes": "long",
                            "text": "string",
                        },
                    },
                    "people": {
                        "pattern": "people_*.jsonl",
                        "key": "login",
                        "fields": {"login": "string", "name": "string", "code": "string"},
                    },
                },
            },
            "erp": {"type": "filedrop", "outbox": "./outbox"},
        },
        "ingest": {"batch_size": 50, "reconcile_every": 0},
        "outbound": {"batch_size": 20, "base_delay": 0.01, "max_delay": 0.1, "max_wait": 5},
    }


MAPPING = {
    "name": "default",
    "entities": {"TimeEntry": {"owner": "tracker"}, "Person": {"owner": "tracker"}},
    "sources": [
        {
            "system": "tracker",
            "object": "people",
            "entity": "Person",
            "id": "code",
            "fields": {"full_name": "name", "employee_code": "code"},
        },
        {
            "system": "tracker",
            "object": "time_entries",
            "entity": "TimeEntry",
            "id": "$key",
            "fields": {
                "person_id": "person | link Person tracker people",
                "date": "day | date",
                "minutes": "minutes",
                "project_id": "text | tag_path 0",
                "task_id": "text | tag_path 1",
                "approved": "text | has_tag approved",
                "billable": "text | has_tag billable",
                "description": "text | strip_tags",
            },
        },
    ],
    "targets": [
        {
            "system": "erp",
            "object": "timesheet_lines",
            "entity": "TimeEntry",
            "when": "approved",
            "fields": {
                "employee": "person_id | target_key tracker",
                "hours": "minutes | div 60 | round 2",
                "day": "date",
                "project": "project_id",
                "task": "task_id",
            },
        },
    ],
}


@dataclass
class Firm:
    root: Path
    store_url: str = ""

    @property
    def backend(self) -> str:
        return "postgresql" if self.store_url.startswith("postgresql") else "sqlite"

    def execute(self, *statements: str) -> None:
        """Run SQL statements on the store's database, in one transaction (as a DBA would)."""
        if self.backend == "sqlite":
            db = sqlite3.connect(self.store_url.removeprefix("sqlite:///"))
            with db:
                for statement in statements:
                    db.execute(statement)
            db.close()
            return
        with psycopg.connect(self.store_url) as conn:
            for statement in statements:
                conn.execute(statement)

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        """The rows of one SQL query on the store's database."""
        if self.backend == "sqlite":
            db = sqlite3.connect(self.store_url.removeprefix("sqlite:///"))
            try:
                return db.execute(statement).fetchall()
            finally:
                db.close()
        with psycopg.connect(self.store_url) as conn:
            return conn.execute(statement).fetchall()

    @property
    def config(self) -> Path:
        return self.root / "synchub.yaml"

    def run(
        self, *args: str, crash_at: str | None = None, check: bool = False, columns: int = 200
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CRASH_AT"}
        env["COLUMNS"] = str(columns)
        if crash_at:
            env["SYNCHUB_CRASH_AT"] = crash_at
        proc = subprocess.run(
            [sys.executable, "-m", "hub.cli", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if check and proc.returncode not in (0, 2):
            raise AssertionError(
                f"synchub {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """`synchub ARGS --config ...` started in the background (with `env` added to the
        environment); the test stops it (by PID)."""
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", *args, "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def json(self, *args: str) -> Any:
        proc = self.run(*args, "--json")
        assert proc.returncode in (0, 2, 3), proc.stderr
        return json.loads(proc.stdout)

    def write_entries(self, name: str, rows: list[dict[str, Any]]) -> None:
        lines = ["id,person,day,minutes,text"] + [
            f"{r['id']},{r['person']},{r['day']},{r['minutes']},{r['text']}" for r in rows
        ]
        (self.root / "inbox" / name).write_text("\n".join(lines) + "\n")

    def outbox_rows(self) -> list[dict[str, Any]]:
        rows = []
        for f in sorted((self.root / "outbox").glob("*.jsonl")):
            rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        return rows


def wait_for(check: Callable[[], object], seconds: float) -> bool:
    """Whether `check()` became true within `seconds` (polled every 0.2 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


def entries(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"e{i}",
            "person": PEOPLE[i % 4],
            "day": f"2026-11-{(i % 20) + 1:02d}",
            "minutes": 15 + i % 300,
            "text": f"work {i} #acme/web/t{i % 5}"
            + (" #approved" if i % 2 == 0 else "")
            + (" #billable" if i % 3 else ""),
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def firm(tmp_path: Path, backend: str, store_url: str) -> Firm:
    """The firm's folder and config; its store on this test's backend (tests/conftest.py)."""
    (tmp_path / "inbox").mkdir()
    (tmp_path / "outbox").mkdir()
    config = config_for(tmp_path)
    if backend != "sqlite":
        config["store"] = {"url": store_url}
    (tmp_path / "synchub.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(MAPPING))
    (tmp_path / "inbox" / "people_1.jsonl").write_text(
        "".join(
            json.dumps({"login": p, "name": p.title(), "code": p.upper()}) + "\n" for p in PEOPLE
        )
    )
    return Firm(tmp_path, store_url)
