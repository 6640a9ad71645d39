"""Outbound workers as a Kafka consumer group (`synchub worker outbound --target erp`) on a
real broker: `synchub run` plans and publishes the writes; two workers split the partitions;
one is SIGKILLed mid-stream; the other takes its partitions over and finishes. Every write
reaches the target once (by idempotency key) and every outcome is recorded once."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from hub.config import load_settings
from hub.store.open import open_store
from tests.integration.conftest import Firm, entries, wait_for
from tests.integration.test_crash_safety import check_store

BOTH_BACKENDS = True


def _outcomes(firm: Firm) -> Counter[str]:
    """Recorded outcomes per idempotency key (applied or rejected: settled ones)."""
    return Counter(key for _, key in _outcomes_in(firm.config).elements())


def _outcomes_in(config: Path) -> Counter[tuple[str, str]]:
    """Settled outcomes (applied or rejected) recorded per (target, idempotency key)."""
    store = open_store(load_settings(config).store_url)
    try:
        out: Counter[tuple[str, str]] = Counter()
        for e in store.read_all():
            if e.type == "WriteAttempted":
                d = store.decode(e)
                if d["status"] != "retryable":  # type: ignore[index]
                    out[(d["target"], d["idempotency_key"])] += 1  # type: ignore[index]
        return out
    finally:
        store.close()


def _head(firm: Firm) -> int:
    """The store's last position."""
    store = open_store(load_settings(firm.config).store_url)
    try:
        return store.head()
    finally:
        store.close()


def _erp(firm: Firm) -> dict[str, int]:
    """The erp target's writes by status ({} while the store is not made yet)."""
    proc = firm.run("status", "--json")
    if proc.returncode not in (0, 2, 3):
        return {}
    return dict(json.loads(proc.stdout)["outbound"].get("erp", {}))


def _assigned(kafka: dict[str, Any], group: str) -> dict[str, list[int]]:
    """Member (static id) → its partitions, in the consumer group now."""
    client = AdminClient({"bootstrap.servers": kafka["bootstrap_servers"]})
    try:
        described = client.describe_consumer_groups([group])[group].result(timeout=10)
    except KafkaException:  # no such group yet (its coordinator is not loaded)
        return {}
    return {
        str(m.group_instance_id): sorted(tp.partition for tp in m.assignment.topic_partitions)
        for m in described.members
    }


def _stop(*procs: subprocess.Popen[str] | None) -> list[str]:
    outs = []
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=60)
            outs.append(stdout + stderr)
    return outs


def test_two_workers_one_killed_every_write_applied_and_recorded_once(
    firm: Firm, kafka: dict[str, Any]
) -> None:
    config = yaml.safe_load(firm.config.read_text())
    config["poll_interval"] = 0.3
    config["kafka"] = {**kafka, "outbound_targets": ["erp"], "partitions": 4}
    config["outbound"]["rate_limit_per_s"] = 60  # writing takes a while: a worker dies in it
    firm.config.write_text(yaml.safe_dump(config))
    firm.write_entries("time_1.csv", entries(20))
    hub = firm.start("run")
    a = b = None
    try:
        # the run process plans and publishes; it does not write to erp itself
        assert wait_for(lambda: _erp(firm).get("pending") == 10, 60)
        a = firm.start(
            "worker", "outbound", "--target", "erp", "--member", "worker-a",
            env={"SYNCHUB_CRASH_AT": "outbound.before_record:2"},
        )  # fmt: skip
        assert wait_for(lambda: len(firm.outbox_rows()) >= 10, 90), _stop(a)
        b = firm.start("worker", "outbound", "--target", "erp", "--member", "worker-b")
        group = kafka["outbound_prefix"] + "erp"
        # the partitions split between the two (cooperative-sticky: a keeps some)
        assert wait_for(
            lambda: (
                _assigned(kafka, group)
                and all(_assigned(kafka, group).values())
                and len(_assigned(kafka, group)) == 2
            ),
            60,
        ), _assigned(kafka, group)
        firm.write_entries("time_2.csv", entries(200, start=20))
        assert wait_for(lambda: a.poll() is not None, 120)  # it kills itself mid-write
        assert a.returncode == -signal.SIGKILL
        assert wait_for(lambda: _erp(firm).get("applied") == 110, 120), _stop(b)
    finally:
        logs = _stop(hub, a, b)
    applied = len(firm.outbox_rows())
    # the outcomes the workers recorded after the run process's last pass (it was stopped
    # as the last write landed) are published by the next pass: nothing else is
    settle = firm.json("sync", "--once")
    assert settle["planned"]["planned"] == 0, settle
    assert settle["published"]["published"] == 0, settle
    assert settle["published"]["writes"] <= applied, settle
    # idle passes afterwards: nothing planned, published, written or appended
    for _ in range(2):
        head = _head(firm)
        idle = firm.json("sync", "--once")
        assert idle["planned"]["planned"] == 0, idle
        assert idle["published"] == {**idle["published"], "published": 0, "writes": 0}
        assert _head(firm) == head, "an idle pass appended events"
    assert len(firm.outbox_rows()) == applied
    rows = firm.outbox_rows()
    keys = Counter(r["idempotency_key"] for r in rows)
    assert set(keys.values()) == {1}, [(k, n) for k, n in keys.items() if n > 1][:3]
    assert len(rows) == applied == 110
    assert {r["canonical_id"] for r in rows} == {f"TimeEntry/e{i}" for i in range(0, 220, 2)}
    outcomes = _outcomes(firm)
    assert len(outcomes) == 110 and set(outcomes.values()) == {1}, outcomes.most_common(3)
    check_store(firm, 220)
    assert any("stopped cleanly" in log for log in logs)


def test_a_target_not_in_outbound_targets_is_refused_with_what_to_do(
    firm: Firm, kafka: dict[str, Any]
) -> None:
    config = yaml.safe_load(firm.config.read_text())
    config["kafka"] = kafka
    firm.config.write_text(yaml.safe_dump(config))
    firm.run("sync", "--once")
    proc = firm.run("worker", "outbound", "--target", "erp")
    assert proc.returncode == 1
    assert "kafka.outbound_targets" in proc.stderr
