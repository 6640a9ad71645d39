"""The PostgreSQL server crashes and restarts (`pg_ctl restart -m immediate`) under a running
`synchub run`: the hub says so in one clear line, waits, goes on by itself once the server is
back (no crash loop, no traceback), and nothing is lost or done twice."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests import pg_cluster
from tests.integration.conftest import Firm, entries, firm, wait_for  # noqa: F401
from tests.integration.test_crash_safety import check_store


@pytest.fixture
def own_server() -> Iterator[pg_cluster.Cluster]:
    """A server of this test's own: restarting the session's would cut the other tests off."""
    cluster = pg_cluster.start(own=True)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_the_hub_rides_out_a_server_crash_and_restart(
    firm: Firm,  # noqa: F811
    own_server: pg_cluster.Cluster,
    tmp_path: Path,
) -> None:
    config = yaml.safe_load(firm.config.read_text())
    config["store"] = {"url": own_server.url}
    config["poll_interval"] = 0.2
    firm.config.write_text(yaml.safe_dump(config))
    firm.store_url = own_server.url
    firm.write_entries("time_1.csv", entries(20))
    run = firm.start("run")
    try:
        assert wait_for(lambda: len(firm.outbox_rows()) == 10, 60)
        old_pid = own_server.pid
        own_server.restart("immediate")  # a crash: every connection cut, then recovery
        assert own_server.pid != old_pid
        firm.write_entries("time_2.csv", entries(40, start=20))
        assert wait_for(lambda: len(firm.outbox_rows()) >= 30, 120)
        assert run.poll() is None  # it never stopped
    finally:
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "Traceback" not in out + err
    rows = firm.outbox_rows()
    assert set(Counter(r["idempotency_key"] for r in rows).values()) == {1}
    assert {r["canonical_id"] for r in rows} == {f"TimeEntry/e{i}" for i in range(0, 60, 2)}
    check_store(firm, 60)
    said = [line for line in err.splitlines() if "cannot be reached" in line]
    back = [line for line in err.splitlines() if "the store is back" in line]
    assert 1 <= len(said) <= 5 and len(back) == 1, err  # said, waited, went on: no loop
    assert "discarding closed connection" not in err  # the pool's own noise is not shown
    before = firm.json("checksum")["checksums"]
    firm.run("rebuild", check=True)
    assert firm.json("checksum")["checksums"] == before
