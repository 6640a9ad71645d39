"""The faust-streaming example consumer (demo/live_indicators.py) on a real broker: approved
time not yet posted, per project, follows the topics — all of it while the writes wait for a
worker, none once `synchub worker outbound` has posted them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import Firm, entries, wait_for


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def test_live_unposted_time_per_project_from_the_topics(
    firm: Firm, kafka: dict[str, Any], tmp_path: Path
) -> None:
    config = yaml.safe_load(firm.config.read_text())
    config["kafka"] = {**kafka, "outbound_targets": ["erp"]}  # writes wait for a worker
    firm.config.write_text(yaml.safe_dump(config))
    rows = entries(20)
    firm.write_entries("time_1.csv", rows)
    assert firm.run("sync", "--once").returncode in (0, 2)
    approved = [r for r in rows if "#approved" in r["text"]]
    expected = Decimal(sum(r["minutes"] for r in approved)) / 60
    out = tmp_path / "live.json"
    env = {
        **os.environ,
        "SYNCHUB_KAFKA": kafka["bootstrap_servers"],
        "SYNCHUB_TOPIC_PREFIX": kafka["topic_prefix"],
        "SYNCHUB_WRITES_TOPIC": kafka["writes_topic"],
        "SYNCHUB_LIVE_OUT": str(out),
        "SYNCHUB_LIVE_ID": kafka["topic_prefix"] + "live",
    }
    faust_worker = subprocess.Popen(
        [sys.executable, "-m", "demo.live_indicators", "worker", "--without-web", "-l", "warn"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )  # fmt: skip
    worker = None
    try:

        def unposted() -> Decimal | None:
            data = _read(out)
            if data is None:
                return None
            return sum(
                (Decimal(v["hours"]) for v in data["approved_unposted"].values()), Decimal(0)
            )

        assert wait_for(lambda: unposted() == round(expected, 2), 90), (
            out.exists() and out.read_text()
        )
        projects = _read(out)["approved_unposted"]  # type: ignore[index]
        assert set(projects) == {"acme"}  # the tag path's first part
        worker = firm.start("worker", "outbound", "--target", "erp", "--member", "w")
        assert wait_for(
            lambda: firm.json("status")["outbound"]["erp"]["applied"] == len(approved), 60
        )
        assert firm.run("sync", "--once").returncode in (0, 2)  # publishes the outcomes
        assert wait_for(lambda: unposted() == 0, 60), out.read_text()
    finally:
        for proc in (worker, faust_worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    output, _ = proc.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    output, _ = proc.communicate()
                if proc is faust_worker:
                    print(output[-4000:])  # shown when the test fails
