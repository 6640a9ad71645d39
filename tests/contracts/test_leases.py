"""Leases (hub.store.leases) on every store backend: one holder at a time; renewal keeps it;
expiry hands it over; a holder of this host that was killed hands it over at once; a clean
stop gives it up."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from hub.store.base import EventStore
from hub.store.leases import LeaseKeeper, Leases
from hub.store.open import open_store

BOTH_BACKENDS = True


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    s = open_store(store_url)
    yield s
    s.close()


def test_one_holder_at_a_time_and_renewal_keeps_it(store: EventStore) -> None:
    a = Leases(store.db, "elsewhere:1:a", seconds=30)
    b = Leases(store.db, "elsewhere:2:b", seconds=30)
    assert a.acquire("ingest/crm")
    assert not b.acquire("ingest/crm")
    assert b.acquire("plan")  # another piece of work is free
    first = {lease.name: lease for lease in a.all()}
    assert a.acquire("ingest/crm")  # renewed: still a's, same start, later end
    again = {lease.name: lease for lease in a.all()}
    assert again["ingest/crm"].holder == "elsewhere:1:a"
    assert again["ingest/crm"].acquired_at == first["ingest/crm"].acquired_at
    assert again["ingest/crm"].expires_at >= first["ingest/crm"].expires_at
    assert [(x.name, x.holder, x.expired) for x in b.all()] == [
        ("ingest/crm", "elsewhere:1:a", False),
        ("plan", "elsewhere:2:b", False),
    ]


def test_an_expired_lease_goes_to_the_next_that_asks(store: EventStore) -> None:
    a = Leases(store.db, "elsewhere:1:a", seconds=1)
    b = Leases(store.db, "elsewhere:2:b", seconds=1)
    assert a.acquire("outbound/erp")
    assert not b.acquire("outbound/erp")
    time.sleep(1.3)  # a stopped renewing (another host: its process cannot be checked)
    assert [x.expired for x in b.all()] == [True]
    assert b.acquire("outbound/erp")
    assert not a.acquire("outbound/erp")  # a, back, finds it taken
    taken = b.all()[0]
    assert taken.holder == "elsewhere:2:b" and not taken.expired


def test_a_killed_holder_on_this_host_hands_over_at_once(store: EventStore, store_url: str) -> None:
    code = (
        "import sys, time\n"
        "from hub.store.open import open_store\n"
        "from hub.store.leases import Leases, new_holder\n"
        "s = open_store(sys.argv[1])\n"
        "assert Leases(s.db, new_holder(), seconds=600).acquire('plan')\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, store_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        mine = Leases(store.db, f"{_host()}:1:x", seconds=600)
        assert not mine.acquire("plan")  # it runs: its lease stands (600 s)
        proc.kill()
        proc.wait(timeout=30)
        assert mine.acquire("plan")  # gone: taken now, not in 600 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_keeper_renews_in_the_background_and_gives_up_on_close(store: EventStore) -> None:
    taken: list[str] = []
    keeper = LeaseKeeper(Leases(store.db, "elsewhere:1:a", seconds=1), taken.append)
    other = Leases(store.db, "elsewhere:2:b", seconds=1)
    assert keeper.hold("ingest/tracker") and taken == ["ingest/tracker"]
    time.sleep(1.6)  # past one lease time: the heartbeat renewed it
    assert not other.acquire("ingest/tracker")
    assert keeper.hold("ingest/tracker") and taken == ["ingest/tracker"]  # not taken twice
    assert keeper.hold("plan") and taken == ["ingest/tracker", "plan"]
    keeper.close()
    assert other.acquire("ingest/tracker") and other.acquire("plan")  # given up, not expired
    assert not keeper.hold("ingest/tracker")
    assert keeper.take_elsewhere() == ["ingest/tracker"]


def test_a_held_lease_renewed_a_moment_ago_costs_no_write(store: EventStore) -> None:
    leases = Leases(store.db, "elsewhere:1:a", seconds=30)
    asked: list[str] = []
    acquire = leases.acquire

    def counted(name: str) -> bool:
        asked.append(name)
        return acquire(name)

    leases.acquire = counted  # type: ignore[method-assign]
    keeper = LeaseKeeper(leases, lambda name: None)
    try:
        for _ in range(5):  # a pass, and the executor's rounds, ask again and again
            assert keeper.hold("outbound/erp")
        assert asked == ["outbound/erp"]  # renewed within a third of 30 s: from memory
        assert keeper.hold("plan") and asked == ["outbound/erp", "plan"]  # new work: asked
    finally:
        keeper.close()


def _host() -> str:
    return socket.gethostname()
