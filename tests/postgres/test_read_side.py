"""The read side for BI on PostgreSQL: typed views over the projections that a read-only role
queries with plain SQL (no JSON decoding), kept across a rebuild with their grants."""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.integration.conftest import Firm, entries, firm  # noqa: F401


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port}"))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_read_only_role_queries_typed_views_that_survive_a_rebuild(
    firm: Firm,  # noqa: F811
) -> None:
    firm.write_entries("time_1.csv", entries(12))
    firm.run("sync", "--once", check=True)
    with psycopg.connect(firm.store_url) as admin:  # the hub made them as it deployed
        assert admin.execute("SELECT count(*) FROM canonical_time_entry").fetchone() == (12,)
    role = f"bi_{uuid.uuid4().hex[:8]}"  # roles are the server's, not the database's
    made = firm.json("migrate", "--grant-read", role)
    assert made["roles_made"] == [role] and made["read_roles"] == [role]
    assert {"canonical_time_entry", "canonical_person", "audit", "exceptions", "indicators"} <= set(
        made["views"]
    )
    with psycopg.connect(firm.store_url, autocommit=True) as admin:  # the DBA lets it log in
        admin.execute(f"ALTER ROLE {role} LOGIN")
    reader = as_user(firm.store_url, role)
    state = firm.json("state", "TimeEntry", "e4")["fields"]

    def read() -> dict[str, object]:
        with psycopg.connect(reader) as conn:
            cur = conn.execute(
                "SELECT id, person_id, date, minutes, approved, billable, project_id"
                " FROM canonical_time_entry WHERE id = 'e4'"
            )
            names = [d.name for d in cur.description or ()]
            row = cur.fetchone()
            assert row is not None
            return dict(zip(names, row, strict=True))

    got = read()
    assert got == {
        "id": "e4",
        "person_id": state["person_id"],
        "date": dt.date.fromisoformat(state["date"]),  # typed: a date, a number, a boolean
        "minutes": state["minutes"],
        "approved": state["approved"],
        "billable": state["billable"],
        "project_id": state["project_id"],
    }
    with psycopg.connect(reader) as conn:
        assert conn.execute("SELECT count(*) FROM canonical_time_entry").fetchone() == (12,)
        changes = conn.execute(
            "SELECT op, captured_at FROM audit WHERE canonical_id = 'TimeEntry/e4'"
        ).fetchall()
        assert [op for op, _ in changes] == ["create"]
        assert isinstance(changes[0][1], dt.datetime)
        conn.execute("SELECT indicator, subject, value, unit FROM indicators").fetchall()
        conn.execute("SELECT id, open, details FROM exceptions").fetchall()
    for forbidden in ("SELECT * FROM p_canonical", "DELETE FROM canonical_time_entry"):
        with psycopg.connect(reader) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(forbidden)

    firm.run("rebuild", check=True)  # the tables are replaced: the views and grants stay
    assert read() == got
    firm.write_entries("time_2.csv", entries(3, start=12))
    bad = {"id": "bad1", "person": "ann", "day": "2026-11-05", "minutes": "lots", "text": "x"}
    firm.write_entries("time_3.csv", [bad])  # quarantined: an open exception
    firm.run("sync", "--once", check=True)
    status = firm.json("status")
    assert status["open_exceptions"] >= 1
    with psycopg.connect(reader) as conn:
        assert conn.execute("SELECT count(*) FROM canonical_time_entry").fetchone() == (15,)
        shown = conn.execute(
            "SELECT subject, value FROM indicators WHERE indicator = 'open_exceptions'"
        ).fetchall()
        assert {kind: int(n) for kind, n in shown} == status["exceptions"]
        assert conn.execute("SELECT count(*) FROM exceptions WHERE open").fetchone() == (
            status["open_exceptions"],
        )
