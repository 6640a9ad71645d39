"""The CLI end to end on the file-drop connector: sync, status, state (--as-of/--at), history,
exceptions (bad input → quarantine → fix → retry), events, rebuild + checksum, run + Ctrl-C."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Firm, entries

BOTH_BACKENDS = True


def test_a_clean_pass_exits_zero_and_reports(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(20))
    done = firm.run("sync", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "open exceptions: 0" in done.stdout
    report = firm.json("sync", "--once")  # second pass: nothing new
    assert report["ingest"][0]["appended"] == 0 and report["planned"]["planned"] == 0
    status = firm.json("status")
    assert status["connectors"]["tracker"]["last_error"] is None
    assert status["connectors"]["tracker"]["checkpoint"] is not None
    assert status["outbound"]["erp"]["applied"] == 10
    assert status["open_exceptions"] == 0
    assert len(firm.outbox_rows()) == 10


def test_state_as_of_equals_what_state_said_then(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(4))
    firm.run("sync", "--once", check=True)
    said = firm.json("state", "TimeEntry", "e1")
    position = said["position"]
    time.sleep(0.1)
    moment = dt.datetime.now(dt.UTC).isoformat()
    time.sleep(0.1)
    changed = entries(4)
    changed[1]["minutes"] = 480
    changed[1]["text"] = "longer #acme/web/t1 #approved"
    firm.write_entries("time_1.csv", changed)  # the export was rewritten
    firm.run("sync", "--once", check=True)
    now = firm.json("state", "TimeEntry", "e1")
    assert now["fields"]["minutes"] == 480 and now["fields"]["approved"] is True
    assert firm.json("state", "timeentry", "e1", "--as-of", moment)["fields"] == said["fields"]
    assert firm.json("state", "TimeEntry", "e1", "--at", str(position))["fields"] == said["fields"]
    history = firm.json("history", "TimeEntry", "e1")
    minutes = [h for h in history if h["field"] == "minutes"]
    assert [(h["old"], h["new"]) for h in minutes] == [(None, 16), (16, 480)]
    assert all(h["system"] == "tracker" and h["source_key"] == "e1" for h in history)
    missing = firm.run("state", "TimeEntry", "nope")
    assert missing.returncode == 3 and "did not exist" in missing.stdout
    bad = firm.run("state", "Widget", "1")
    assert bad.returncode == 1 and "unknown entity 'Widget'" in bad.stderr


def test_state_as_of_the_time_events_show_prints_includes_that_event(firm: Firm) -> None:
    """The time `events show P` prints, given to `state --as-of`, includes P: the store keeps
    its clock at the microseconds it prints (the store contract checks many positions)."""
    firm.write_entries("time_1.csv", entries(4))
    firm.run("sync", "--once", check=True)
    head = firm.json("status")["store"]["head"]
    shown = firm.run("events", "show", str(head), check=True).stdout
    (printed,) = re.findall(r"recorded (\S+)", shown)
    assert firm.json("events", "show", str(head))["recorded_at"] == printed
    then = firm.json("state", "TimeEntry", "e1", "--as-of", printed)
    assert then["position"] == head and then["exists"]


def test_bad_input_is_quarantined_and_retry_after_a_fix_captures_it(firm: Firm) -> None:
    rows = entries(6)
    rows[2]["minutes"] = "ninety"  # wrong type
    firm.write_entries("time_1.csv", rows)
    (firm.root / "inbox" / "time_2.csv").write_bytes(
        b"id,person,day,minutes,text\ne90,ann,2026-11-02,30,caf\xe9 #acme/web/t1\n"
    )  # Latin-1, not UTF-8
    done = firm.run("sync", "--once")
    assert done.returncode == 2, done.stdout + done.stderr  # open exceptions
    listed = firm.json("exceptions", "list")
    by_key = {x["key"]: x for x in listed}
    assert by_key["e2"]["kind"] == "quarantine" and by_key["e2"]["field"] == "minutes"
    assert "'ninety'" in by_key["e2"]["message"] and "expected long" in by_key["e2"]["message"]
    (utf8,) = [x for x in listed if x["key"] != "e2"]
    assert "UTF-8" in utf8["message"] and "time_2.csv" in utf8["message"]
    # the rest went through; the hub kept running
    assert firm.json("state", "TimeEntry", "e3")["exists"]
    assert not firm.json("state", "TimeEntry", "e2")["exists"]
    shown = firm.json("exceptions", "show", by_key["e2"]["id"])
    assert shown["details"]["raw"] and shown["fix"]
    # fixing the source row: the corrected record is captured and the exception resolves itself
    rows[2]["minutes"] = 90
    firm.write_entries("time_1.csv", rows)
    firm.run("sync", "--once")
    assert firm.json("exceptions", "show", by_key["e2"]["id"])["status"] == "resolved"
    assert firm.json("state", "TimeEntry", "e2")["fields"]["minutes"] == 90
    # the undecodable file is fixed by hand elsewhere: resolve with a note, then nothing is open
    resolved = firm.json("exceptions", "resolve", utf8["id"], "--note", "re-exported as UTF-8")
    assert resolved["status"] == "resolved" and "re-exported" in resolved["resolution"]
    assert firm.run("sync", "--once").returncode == 0


def test_events_tail_and_show_decode_facts(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(3))
    firm.run("sync", "--once", check=True)
    tail = firm.json("events", "tail", "-n", "5", "--type", "SourceChanged")
    assert [e["type"] for e in tail] == ["SourceChanged"] * 5
    position = tail[0]["position"]
    first = firm.json("events", "show", str(position))
    assert first["position"] == position and first["payload"]["op"] == "create"
    assert first["schema"].startswith("synchub.source.tracker.")
    assert len(first["fingerprint"]) == 16
    assert firm.json("events", "show", "1")["type"] == "MappingDeployed"
    text = firm.run("events", "show", str(position))
    assert text.returncode == 0 and "schema" in text.stdout


def test_rebuild_gives_equal_checksums(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(40))
    firm.run("sync", "--once", check=True)
    before = firm.json("checksum")
    rebuilt = firm.json("rebuild")
    assert rebuilt["unchanged"] == {
        "canonical": True,
        "audit": True,
        "exceptions": True,
        "outbound": True,
        "backlog": True,
    }
    assert firm.json("checksum")["checksums"] == before["checksums"]
    one = firm.json("rebuild", "audit")
    assert one["rebuilt"] == ["audit"] and one["unchanged"] == {"audit": True}
    assert firm.run("rebuild", "nonsense").returncode == 2


def test_run_syncs_continuously_and_stops_cleanly_on_ctrl_c(firm: Firm) -> None:
    config = json.loads(json.dumps(__import__("yaml").safe_load(firm.config.read_text())))
    config["poll_interval"] = 0.2
    firm.config.write_text(__import__("yaml").safe_dump(config))
    proc = firm.start("run")
    try:
        firm.write_entries("time_1.csv", entries(6))
        deadline = time.time() + 30
        while time.time() < deadline and len(firm.outbox_rows()) < 3:
            time.sleep(0.2)
        assert len(firm.outbox_rows()) == 3
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped cleanly" in out


def test_run_serves_prometheus_metrics_that_follow_the_passes(firm: Firm) -> None:
    config = __import__("yaml").safe_load(firm.config.read_text())
    config["poll_interval"] = 0.2
    firm.config.write_text(__import__("yaml").safe_dump(config))
    proc = firm.start("run", "--metrics-port", "0")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "metrics on http://127.0.0.1:PORT/metrics"
        url = first.split("metrics on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics"), first
        firm.write_entries("time_1.csv", entries(6))
        deadline = time.time() + 30
        samples: dict[str, float] = {}
        while time.time() < deadline:
            samples = scrape(url)
            if samples.get("synchub_writes_total['applied', 'erp']") == 3:
                break
            time.sleep(0.2)
        assert samples.get("synchub_writes_total['applied', 'erp']") == 3, samples
        captured = [
            v for k, v in samples.items() if k.startswith("synchub_changes_captured_total[")
        ]
        assert (
            sum(captured) >= 6
            and "synchub_changes_captured_total['time_entries', 'tracker']" in samples
        )
        assert samples["synchub_pass_duration_seconds_count[]"] == samples["synchub_passes_total[]"]
        done = samples
        while (
            time.time() < deadline
            and samples["synchub_passes_total[]"] < done["synchub_passes_total[]"] + 2
        ):
            time.sleep(0.2)
            samples = scrape(url)
        # idle passes (the work is done): nothing planned, nothing appended
        assert samples["synchub_passes_total[]"] >= done["synchub_passes_total[]"] + 2
        for name in ("synchub_events_appended_total[]", "synchub_writes_planned_total['erp']"):
            assert samples[name] == done[name], name
        assert samples["synchub_projection_lag_events[]"] == 0
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def scrape(url: str) -> dict[str, float]:
    """The samples at `url`, by name and sorted label values."""
    text = httpx.get(url, timeout=5).text
    return {
        s.name + str(sorted(s.labels.values())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_second_ctrl_c_stops_run_at_once_and_the_next_pass_goes_on(firm: Firm) -> None:
    config = __import__("yaml").safe_load(firm.config.read_text())
    config["outbound"] = {"rate_limit_per_s": 0.5}  # the pass waits ~2 s between writes
    firm.config.write_text(__import__("yaml").safe_dump(config))
    firm.write_entries("time_1.csv", entries(8))  # 4 approved: 4 writes, ~6 s of waiting
    proc = firm.start("run")
    try:
        assert proc.stdout is not None
        assert "synchub running" in proc.stdout.readline()  # started (slow on a loaded machine)
        time.sleep(1.5)  # inside the first pass, waiting on the rate limit
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        started = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert time.time() - started < 3  # not after the pass
    assert "Ctrl-C again to stop now" in err and "stopping now" in err
    assert "stopped cleanly" not in out
    config["outbound"] = {"rate_limit_per_s": 100}
    firm.config.write_text(__import__("yaml").safe_dump(config))
    firm.run("sync", "--once", check=True)  # goes on from where it stopped: nothing twice
    keys = [r["idempotency_key"] for r in firm.outbox_rows()]
    assert len(keys) == len(set(keys)) == 4


def test_help_everywhere_and_init(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for args in (
        [],
        ["sync"],
        ["exceptions"],
        ["exceptions", "retry"],
        ["events", "tail"],
        ["state"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "hub.cli", *args, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0 and "Usage" in proc.stdout
    cfg = tmp_path / "conf" / "synchub.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "hub.cli", "init", "--config", str(cfg)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and cfg.exists() and (cfg.parent / "mapping.yaml").exists()
    status = subprocess.run(
        [sys.executable, "-m", "hub.cli", "sync", "--once", "--config", str(cfg)],
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "hub.cli", "status", "--config", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "synchub init" in missing.stderr


def test_tables_of_an_older_synchub_are_rebuilt_and_named_on_the_next_command(
    firm: Firm,
) -> None:
    firm.write_entries("time_1.csv", entries(12))
    firm.run("sync", "--once", check=True)
    before = firm.json("checksum")["checksums"]
    firm.execute(  # the per-field audit table of an older synchub
        "DROP TABLE p_audit" + (" CASCADE" if firm.backend == "postgresql" else ""),
        "CREATE TABLE p_audit (position INTEGER, seq INTEGER, canonical_id TEXT,"
        " field TEXT, old TEXT, new TEXT, PRIMARY KEY (position, seq))",
    )
    status = firm.run("status")
    assert status.returncode == 0, status.stderr
    assert "rebuilt p_audit: written by an older synchub" in status.stderr
    assert firm.json("checksum")["checksums"] == before
    again = firm.run("status")
    assert "older synchub" not in again.stderr  # rebuilt once


def test_rebuild_dry_run_previews_a_mapping_without_deploying(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(4))
    firm.run("sync", "--once", check=True)
    before = firm.json("checksum")["checksums"]
    candidate = __import__("yaml").safe_load((firm.root / "mapping.yaml").read_text())
    candidate["sources"][1]["fields"]["description"] = "text | strip_tags | upper"
    path = firm.root / "candidate.yaml"
    path.write_text(__import__("yaml").safe_dump(candidate))
    preview = firm.json("rebuild", "--dry-run", "--mapping", str(path))
    changed = {(d["canonical_id"], d["field"]) for d in preview["differences"]}
    assert changed == {(f"TimeEntry/e{i}", "description") for i in range(4)}
    d0 = next(d for d in preview["differences"] if d["canonical_id"] == "TimeEntry/e0")
    assert (d0["old"], d0["new"]) == ("work 0", "WORK 0")
    assert firm.json("checksum")["checksums"] == before  # nothing deployed, nothing changed
    assert firm.json("state", "TimeEntry", "e0")["fields"]["description"] == "work 0"
    assert preview["writes"] == []  # the ERP lines carry no description
    # an outbound fix: lines of billable entries (not approved ones), hours to one decimal
    candidate["targets"][0]["when"] = "billable"
    candidate["targets"][0]["fields"]["hours"] = "minutes | div 60 | round 1"
    path.write_text(__import__("yaml").safe_dump(candidate))
    writes = firm.json("rebuild", "--dry-run", "--mapping", str(path))["writes"]
    assert [(w["canonical_id"], w["op"]) for w in writes] == [
        ("TimeEntry/e0", "delete"),  # approved, not billable: 15 min
        ("TimeEntry/e1", "create"),  # billable, not approved: 16 min
        ("TimeEntry/e2", "update"),  # both: 17 min
    ]
    assert writes[1]["fields"]["hours"] == [None, 0.3]
    assert writes[2]["fields"] == {"hours": [0.28, 0.3]}
    text = firm.run("rebuild", "--dry-run", "--mapping", str(path))
    assert "erp/timesheet_lines: 1 create, 1 delete, 1 update" in text.stdout
    assert "hours: 0.28 → 0.3" in text.stdout
    assert firm.json("checksum")["checksums"] == before


def test_json_goes_alone_to_stdout_and_nothing_to_stderr(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(2))
    firm.run("sync", "--once", check=True)
    for args in (("checksum",), ("status",), ("state", "TimeEntry", "e1"), ("events", "tail")):
        proc = firm.run(*args, "--json")
        assert proc.returncode == 0 and json.loads(proc.stdout) is not None
        assert proc.stderr == "", (args, proc.stderr)


def test_wrong_choices_and_positions_are_refused_with_the_valid_ones(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(2))
    firm.run("sync", "--once", check=True)
    head = firm.json("status")["store"]["head"]
    status = firm.run("exceptions", "list", "--status", "opne")
    assert status.returncode == 2 and "open, retrying, resolved, ignored, all" in status.stderr
    kind = firm.run("exceptions", "list", "--kind", "quarantined")
    assert kind.returncode == 2 and "quarantine, mapping, plan, write" in kind.stderr
    for position in (str(head + 5), "-1"):
        beyond = firm.run("state", "TimeEntry", "e1", "--at", position)
        assert beyond.returncode == 2, beyond.stdout
        assert f"0 to {head}" in beyond.stderr, beyond.stderr
    assert firm.run("events", "tail", "-n", "0").returncode == 2
    assert firm.run("state", "TimeEntry", "e1", "--at", str(head)).returncode == 0


def test_an_unknown_entity_id_exits_3_with_json_too(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(2))
    firm.run("sync", "--once", check=True)
    for args in (("state", "TimeEntry", "nope"), ("history", "TimeEntry", "nope")):
        assert firm.run(*args).returncode == 3
        proc = firm.run(*args, "--json")
        assert proc.returncode == 3, args
        json.loads(proc.stdout)


def test_a_store_that_cannot_be_opened_or_is_missing_is_said_plainly(firm: Firm) -> None:
    resolve = firm.run("exceptions", "resolve", "x123")
    assert resolve.returncode == 1 and "no event store" in resolve.stderr
    assert not (firm.root / "synchub.db").exists()  # acting on nothing creates nothing
    config = __import__("yaml").safe_load(firm.config.read_text())
    if firm.backend == "sqlite":
        config["store"]["path"] = "./inbox"  # a folder, not a file
        said = ("store.path", "inbox")
    else:  # a server that is not there, the password in the URL
        config["store"]["url"] = "postgresql://sync:hunter22@127.0.0.1:1/synchub"
        said = ("store.url", "cannot connect", "postgresql://sync:***@127.0.0.1:1/synchub")
    firm.config.write_text(__import__("yaml").safe_dump(config))
    for args in (("status",), ("sync", "--once")):
        proc = firm.run(*args)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert all(s in proc.stderr for s in said), proc.stderr
        assert "hunter22" not in proc.stderr + proc.stdout


def test_exceptions_and_history_read_well_in_80_columns(firm: Firm) -> None:
    rows = entries(2)
    rows[1]["minutes"] = "ninety"
    firm.write_entries("time_1.csv", rows)
    firm.run("sync", "--once")
    (x,) = firm.json("exceptions", "list")
    listed = firm.run("exceptions", "list", columns=80)
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
    assert x["id"] in listed.stdout  # whole, so it can be copied into `exceptions show`
    assert "'ninety'" in listed.stdout.replace("\n", " ")
    shown = firm.run("history", "TimeEntry", "e0", columns=80)
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    assert "…" not in shown.stdout  # values are wrapped, never cut


def test_values_with_square_brackets_are_shown_as_they_are(firm: Firm) -> None:
    rows = entries(2)
    rows[0]["text"] = "[bold]review[/bold] #acme/web/t1 #approved"
    rows[1]["minutes"] = "[/x]"  # quarantined: the message quotes the value
    firm.write_entries("time_1.csv", rows)
    firm.run("sync", "--once")
    state = firm.run("state", "TimeEntry", "e0")
    assert state.returncode == 0 and '"[bold]review[/bold]"' in state.stdout
    history = firm.run("history", "TimeEntry", "e0")
    assert "[bold]review[/bold]" in history.stdout
    listed = firm.run("exceptions", "list")
    assert listed.returncode == 0, listed.stderr
    assert "'[/x]'" in listed.stdout
    (x,) = firm.json("exceptions", "list")
    shown = firm.run("exceptions", "show", x["id"])
    assert shown.returncode == 0 and "'[/x]'" in shown.stdout, shown.stderr
    tail = firm.run("events", "tail")
    assert tail.returncode == 0 and "[bold]review[/bold]" in tail.stdout


def test_rebuild_refuses_options_it_would_ignore(firm: Firm) -> None:
    firm.write_entries("time_1.csv", entries(2))
    firm.run("sync", "--once", check=True)
    mapping = str(firm.root / "mapping.yaml")
    alone = firm.run("rebuild", "--mapping", mapping)  # would rebuild under the deployed one
    assert alone.returncode == 2 and "--dry-run" in alone.stderr, alone.stdout
    one = firm.run("rebuild", "audit", "--dry-run")  # a preview replays every projection
    assert one.returncode == 2 and "PROJECTION" in one.stderr, one.stdout


def test_a_connector_error_is_printed_whole_in_80_columns(firm: Firm) -> None:
    (firm.root / "inbox" / "people_1.jsonl").unlink()
    (firm.root / "inbox").rmdir()
    done = firm.run("sync", "--once", columns=80)
    assert done.returncode == 1
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    text = " ".join(done.stdout.split())  # the lines rejoined
    assert str(firm.root / "inbox") in text and "`connectors.tracker.directory`" in text, text
    status = firm.run("status", columns=80)
    text = "".join(
        line.strip("│ ") for line in status.stdout.splitlines() if line.startswith("│")
    )  # the last error column's lines, rejoined
    assert "`connectors.tracker.directory`" in text, status.stdout


def test_status_shows_checkpoints_in_short_within_80_columns_and_whole_in_json(
    firm: Firm,
) -> None:
    firm.write_entries("time_1.csv", entries(3))
    firm.write_entries("time_2.csv", entries(3, start=3))
    firm.run("sync", "--once", check=True)
    shown = firm.run("status", columns=80)
    assert shown.returncode == 0, shown.stderr
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80, shown.stdout
    assert '{"' not in shown.stdout, shown.stdout  # no JSON cut at a width
    cells = " ".join(
        line.split("│")[2].strip() for line in shown.stdout.splitlines() if line.count("│") == 3
    )  # the checkpoint column of the checkpoints table, its lines rejoined
    for path in ("people/people_1.jsonl", "time_entries/time_1.csv", "time_entries/time_2.csv"):
        assert f"objects/{path}:" in cells, shown.stdout
    assert "line 5," in cells and "version 1" in cells, cells  # the next line of time_1.csv
    checkpoint = firm.json("status")["connectors"]["tracker"]["checkpoint"]
    files = checkpoint["objects"]["time_entries"]
    assert files["time_1.csv"]["line"] == 5 and len(files["time_1.csv"]["prefix"]) == 32


def test_a_refused_reconciliation_is_reported_beside_what_the_pass_captured(
    firm: Firm,
) -> None:
    config = __import__("yaml").safe_load(firm.config.read_text())
    config["connectors"]["tracker"]["objects"]["time_entries"]["snapshot"] = True
    firm.config.write_text(__import__("yaml").safe_dump(config))
    rows = entries(6)
    firm.write_entries("time_1.csv", rows)
    firm.run("sync", "--once", check=True)
    for row in rows[:2]:
        row["minutes"] = 300
    firm.write_entries("time_2.csv", rows[:2])  # the newest snapshot: 2 updated, 4 gone (67 %)
    done = firm.run("sync", "--once", "--json")
    assert done.returncode == 1, done.stderr  # an error: reconciliation needs a decision
    report = json.loads(done.stdout)
    (tracker,) = [r for r in report["ingest"] if r["connector"] == "tracker"]
    assert tracker["appended"] == 2, report  # the updates were stored and are counted
    assert tracker["deleted_by_reconciliation"] == 0
    assert "would delete 4 of 6 records" in tracker["reconcile_refused"], tracker
    assert report["errors"] == [f"tracker: {tracker['reconcile_refused']}"]
    assert firm.json("state", "TimeEntry", "e1")["fields"]["minutes"] == 300
    rows[0]["minutes"] = 301
    firm.write_entries("time_3.csv", rows[:2])  # one more update, still 4 of 6 gone: refused
    shown = firm.run("sync", "--once", columns=80)
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    (row,) = [line for line in shown.stdout.splitlines() if line.startswith("│ tracker")]
    assert [cell.strip() for cell in row.split("│")[2:7]] == ["1", "1", "0", "refused", "failed"]
    text = " ".join(shown.stdout.split())
    assert "reconciliation refused: tracker: the 1 change(s) captured are stored" in text, text
    assert "would delete 4 of 6 records" in text and "--reconcile-force" in text, text


def test_state_all_lists_every_entity_of_a_type_now_and_as_of_with_filters(firm: Firm) -> None:
    import csv
    import io

    firm.write_entries("time_1.csv", entries(6))
    firm.run("sync", "--once", check=True)
    position = firm.json("status")["store"]["head"]
    changed = entries(6)
    changed[1]["text"] = "now approved #acme/web/t1 #approved"
    firm.write_entries("time_1.csv", changed)
    firm.run("sync", "--once", check=True)

    now = firm.json("state", "timeentry", "--all")
    assert now["entity"] == "TimeEntry"
    assert [e["canonical_id"] for e in now["entities"]] == [f"TimeEntry/e{i}" for i in range(6)]
    for e in now["entities"]:  # each equals what `state ENTITY ID` says
        one = firm.json("state", "TimeEntry", e["canonical_id"].split("/")[1])
        assert one["fields"] == e["fields"]
    approved = firm.json("state", "TimeEntry", "--all", "--where", "approved=true")
    assert [e["canonical_id"] for e in approved["entities"]] == [
        "TimeEntry/e0",
        "TimeEntry/e1",
        "TimeEntry/e2",
        "TimeEntry/e4",
    ]
    then = firm.json(
        "state", "TimeEntry", "--all", "--at", str(position), "--where", "approved=true"
    )
    assert [e["canonical_id"] for e in then["entities"]] == [
        "TimeEntry/e0",
        "TimeEntry/e2",
        "TimeEntry/e4",
    ]
    both = firm.json(
        "state", "TimeEntry", "--all", "--where", "approved=true", "--where", "minutes=16"
    )
    assert [e["canonical_id"] for e in both["entities"]] == ["TimeEntry/e1"]

    table = firm.run("state", "TimeEntry", "--all", columns=80)
    assert table.returncode == 0 and "6 TimeEntry" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    done = firm.run("state", "TimeEntry", "--all", "--csv")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["natural_id"] for r in rows] == [f"e{i}" for i in range(6)]
    assert rows[1]["approved"] == "true" and rows[1]["minutes"] == "16"

    typo = firm.run("state", "TimeEntri", "--all")
    assert typo.returncode == 1 and "did you mean 'TimeEntry'" in typo.stderr
    neither = firm.run("state", "TimeEntry")
    assert neither.returncode == 2 and "--all" in neither.stderr
    bad = firm.run("state", "TimeEntry", "--all", "--where", "approved")
    assert bad.returncode == 2 and "FIELD=VALUE" in bad.stderr
