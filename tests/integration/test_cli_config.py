"""The config on the command line (issue 8): `--config`/`-c` before the command (as git, kubectl
and docker users type it) and after it, the one after the command winning; commands that only
read the store (and `exceptions resolve`, which only records a decision) work when a
connector's secret variable is not set, and those that reach the systems say which variable
to set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hub.cli import app
from tests.integration.conftest import Firm, entries

runner = CliRunner()


def test_config_before_the_command_works_for_every_command_and_sub_command(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(4))
    cfg = str(firm.config)
    synced = runner.invoke(app, ["-c", cfg, "sync", "--once", "--json"])
    assert synced.exit_code == 0, synced.output
    head = json.loads(runner.invoke(app, ["-c", cfg, "status", "--json"]).stdout)["store"]["head"]
    assert head > 0
    for args in (
        ["checksum"],
        ["state", "TimeEntry", "e1"],
        ["history", "TimeEntry", "e1"],
        ["exceptions", "list"],
        ["events", "tail", "-n", "2"],
        ["events", "show", "1"],
    ):
        for before in (["-c", cfg], ["--config", cfg]):
            done = runner.invoke(app, [*before, *args, "--json"])
            assert done.exit_code == 0, (args, done.output, done.exception)
            assert json.loads(done.stdout) is not None
    assert runner.invoke(app, ["events", "tail", "-n", "1", "--json", "-c", cfg]).exit_code == 0


def test_given_before_and_after_the_command_the_later_one_wins(firm: Firm, tmp_path: Path) -> None:
    firm.write_entries("time_1.csv", entries(2))
    firm.run("sync", "--once", check=True)
    cfg, missing = str(firm.config), str(tmp_path / "missing.yaml")
    later = runner.invoke(app, ["-c", missing, "status", "--json", "-c", cfg])
    assert later.exit_code == 0, later.output
    wrong = runner.invoke(app, ["-c", cfg, "exceptions", "list", "-c", missing])
    assert wrong.exit_code == 1 and missing in str(wrong.exception)
    # $SYNCHUB_CONFIG is the default of both places; a -c anywhere wins over it
    env = {"SYNCHUB_CONFIG": cfg}
    assert runner.invoke(app, ["status", "--json"], env=env).exit_code == 0
    assert runner.invoke(app, ["events", "tail", "--json"], env=env).exit_code == 0
    overridden = runner.invoke(app, ["-c", missing, "status"], env=env)
    assert overridden.exit_code == 1 and missing in str(overridden.exception)


def test_init_writes_where_a_config_before_the_command_says(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "synchub.yaml"
    done = runner.invoke(app, ["-c", str(cfg), "init"])
    assert done.exit_code == 0, done.output
    assert cfg.exists() and (cfg.parent / "mapping.yaml").exists()


SECRET = "SYNCHUB_TEST_CRM_PASSWORD"


def test_reading_the_store_needs_no_connector_secret_and_sync_names_the_variable(
    firm: Firm, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = entries(3)
    rows[2]["minutes"] = "ninety"  # quarantined: an exception to list and show
    firm.write_entries("time_1.csv", rows)
    firm.run("sync", "--once")
    config = yaml.safe_load(firm.config.read_text())
    config["connectors"]["crm"] = {
        "type": "tryton",
        "url": "http://127.0.0.1:9/never-reached",
        "database": "crm",
        "user": "sync",
        "password": f"${{{SECRET}}}",
    }
    firm.config.write_text(yaml.safe_dump(config))
    monkeypatch.delenv(SECRET, raising=False)
    cfg = str(firm.config)
    (exception,) = json.loads(
        runner.invoke(app, ["-c", cfg, "exceptions", "list", "--json"]).stdout
    )
    for args in (
        ["status"],
        ["checksum"],
        ["state", "TimeEntry", "e1"],
        ["history", "TimeEntry", "e1"],
        ["events", "tail"],
        ["events", "show", "1"],
        ["exceptions", "list", "--status", "all"],
        ["exceptions", "show", exception["id"]],
        ["rebuild"],
    ):
        done = runner.invoke(app, [*args, "--json", "-c", cfg])
        assert done.exit_code == 0, (args, done.output, done.exception)
        json.loads(done.stdout)
    assert (
        json.loads(runner.invoke(app, ["-c", cfg, "status", "--json"]).stdout)["connectors"]["crm"][
            "checkpoint"
        ]
        is None
    )
    # deciding an exception only records the decision: no connector, no secret
    done = runner.invoke(
        app, ["-c", cfg, "exceptions", "resolve", exception["id"], "--note", "fixed", "--json"]
    )
    assert done.exit_code == 0, (done.output, done.exception)
    assert json.loads(done.stdout)["status"] == "resolved"
    for args in (("sync", "--once"), ("run",)):  # they build the connectors: the variable is needed
        proc = firm.run(*args)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        said = " ".join(proc.stderr.split())
        assert f"connectors.crm.password refers to ${{{SECRET}}}" in said, said
        assert f"`export {SECRET}=...`" in said and cfg in said, said
