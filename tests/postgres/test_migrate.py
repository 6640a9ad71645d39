"""`synchub migrate --to postgresql://…`: the embedded store's log copied into PostgreSQL as it
is (positions, payloads, schemas, the clock), verified, the SQLite file untouched; a second
migration into the same database is refused; the URL's password never shows."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from bench._common import GenSource
from hub.cli import app
from hub.ingest import Ingestor
from hub.store.migrate import log_checksum
from hub.store.postgres import PostgresEventStore
from hub.store.sqlite import SQLiteEventStore
from tests.integration.conftest import Firm, entries, firm  # noqa: F401


def test_the_log_moves_to_postgresql_as_it_is(pg_url: str, tmp_path: Path) -> None:
    path = tmp_path / "synchub.db"
    lite = SQLiteEventStore(str(path))
    Ingestor(lite, "bench", GenSource(4000, 250, 0.2, seed=3)).run_once()
    count, checksum = log_checksum(lite)
    clock = lite.appends()
    times = {p: lite.time_of(p) for p in (1, count // 2, count)}
    lite.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    config = tmp_path / "synchub.yaml"
    config.write_text(yaml.safe_dump({"store": {"path": str(path)}}))
    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:n0t-shown-pw@")

    done = CliRunner().invoke(app, ["migrate", "--to", url, "-c", str(config), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert (result["events"], result["checksum"], result["appends"]) == (
        count,
        checksum,
        len(clock),
    )
    assert "n0t-shown-pw" not in done.output and "***" in result["to"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the source is only read

    pg = PostgresEventStore(pg_url)
    try:
        assert log_checksum(pg) == (count, checksum)
        assert pg.appends() == clock
        assert {p: pg.time_of(p) for p in times} == times  # times find the same positions
        for p, when in times.items():
            assert when is not None and pg.position_at(when) >= p
        assert [pg.decode(e) for e in pg.read(0, 3)] == lite_decoded(path, 3)
    finally:
        pg.close()

    again = subprocess.run(  # as a person runs it: the error said, not a traceback
        [sys.executable, "-m", "hub.cli", "migrate", "--to", url, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1, again.stdout + again.stderr
    said = " ".join((again.stdout + again.stderr).split())
    assert "already holds events: migrate into an empty database" in said
    assert "Traceback" not in said and "n0t-shown-pw" not in said


def lite_decoded(path: Path, n: int) -> list[object]:
    store = SQLiteEventStore(str(path))
    try:
        return [store.decode(e) for e in store.read(0, n)]
    finally:
        store.close()


def test_an_unreachable_server_is_said_at_once_with_the_password_hidden(tmp_path: Path) -> None:
    path = tmp_path / "synchub.db"
    SQLiteEventStore(str(path)).close()
    config = tmp_path / "synchub.yaml"
    config.write_text(yaml.safe_dump({"store": {"path": str(path)}}))
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://sync:hush-hush-pw@127.0.0.1:{port}/nowhere"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "migrate", "--to", url, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said
    assert time.monotonic() - started < 20
    assert "cannot connect to the PostgreSQL store at postgresql://sync:***@127.0.0.1" in said
    assert "Connection refused" in said or "connection failed" in said
    assert "hush-hush-pw" not in said and "Traceback" not in said


def test_a_firm_that_ran_on_sqlite_goes_on_on_postgresql_with_equal_projections(
    firm: Firm,  # noqa: F811
    pg_url: str,
) -> None:
    firm.write_entries("time_1.csv", entries(30))
    firm.run("sync", "--once", check=True)
    checksums = firm.json("checksum")["checksums"]
    state = firm.json("state", "TimeEntry", "e2")
    history = firm.json("history", "TimeEntry", "e2")

    result = firm.json("migrate", "--to", pg_url)
    assert result["projections"]["compared"] is True  # built there, equal to SQLite's
    assert result["projections"]["checksums"] == checksums

    config = yaml.safe_load(firm.config.read_text())
    config["store"] = {"url": pg_url}  # the firm moves
    firm.config.write_text(yaml.safe_dump(config))
    assert firm.json("checksum")["checksums"] == checksums
    assert firm.json("state", "TimeEntry", "e2") == state
    assert firm.json("history", "TimeEntry", "e2") == history
    firm.write_entries("time_2.csv", entries(10, start=30))
    moved = firm.run("sync", "--once", check=True)
    assert moved.returncode == 0, moved.stderr
    assert firm.json("state", "TimeEntry", "e38")["fields"]["minutes"] == 15 + 38
    head = firm.json("status")["store"]["head"]
    idle = firm.json("sync", "--once")
    assert idle["planned"]["planned"] == 0 and idle["executed"]["attempted"] == 0
    assert firm.json("status")["store"]["head"] == head  # an idle pass appends nothing


def test_migrate_without_to_makes_and_upgrades_a_new_postgresql_store(
    tmp_path: Path, pg_url: str
) -> None:
    config = tmp_path / "synchub.yaml"
    config.write_text(yaml.safe_dump({"store": {"url": pg_url}}))
    first = CliRunner().invoke(app, ["migrate", "-c", str(config), "--json"])
    assert first.exit_code == 0, first.output
    made = json.loads(first.output)
    assert made["schema_version"] == 2 and "canonical_time_entry" in made["views"]
    again = CliRunner().invoke(app, ["migrate", "-c", str(config)])  # idempotent, says so
    assert again.exit_code == 0, again.output
    assert "tables at version 2" in again.output and "canonical_time_entry" in again.output
    lite = tmp_path / "lite.yaml"
    lite.write_text(yaml.safe_dump({"store": {"path": str(tmp_path / "x.db")}}))
    refused = CliRunner().invoke(app, ["migrate", "--grant-read", "bi", "-c", str(lite)])
    assert refused.exit_code == 1 and "needs a PostgreSQL store" in str(refused.exception)
