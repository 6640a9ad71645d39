"""Leases: which process works what (a connector's capture, the planner, a target's writes),
so several hub processes share one store and each piece of work has one worker at a time.

A lease is a row of `synchub_leases (name, holder, acquired_at, expires_at)` in the store's
database, its times in microseconds of the database's own clock (every process reads the
same one). `acquire` takes a lease that is free, expired or already ours, and extends it by
`seconds`; a holder that stops renewing (killed, hung, cut off) loses it `seconds` after its
last renewal, and the next process to ask takes it over. The work behind a lease is also safe
without it: appends are versioned per stream and projections claimed per transaction, so a
lease holder that lost its lease without knowing can only fail, never duplicate.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from hub.store.base import Database

__all__ = ["LEASES_TABLE", "Lease", "LeaseKeeper", "Leases", "new_holder"]

log = logging.getLogger("synchub.leases")

LEASES_TABLE = (
    "CREATE TABLE IF NOT EXISTS synchub_leases (name {text} PRIMARY KEY, holder {text} NOT NULL,"
    " acquired_at {int} NOT NULL, expires_at {int} NOT NULL)"
)
"""The table's DDL; each backend fills in its types and makes it with its own tables."""


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: int
    """Microseconds since the epoch, the database's clock."""
    expires_at: int
    now: int
    """The database's clock when this was read."""

    @property
    def expired(self) -> bool:
        return self.expires_at < self.now


def new_holder() -> str:
    """This process's name as a lease holder: `SYNCHUB_PROCESS_NAME@host` (or the host's name
    alone), the PID and a random suffix (a PID is reused)."""
    host = socket.gethostname()
    name = os.environ.get("SYNCHUB_PROCESS_NAME")
    return f"{name + '@' if name else ''}{host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _gone(holder: str) -> bool:
    """Whether `holder` names a process of this host that no longer runs."""
    where, _, rest = holder.partition(":")
    host = where.rpartition("@")[2]
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it runs
        return False
    return False


class Leases:
    """The leases of one process (`holder`) in `db`; each lasts `seconds` after its renewal."""

    def __init__(self, db: Database, holder: str, seconds: float = 30.0) -> None:
        self.db = db
        self.holder = holder
        self.span = int(seconds * 1_000_000)
        now = db.dialect.now_us
        self._acquire = (
            "INSERT INTO synchub_leases (name, holder, acquired_at, expires_at)"
            f" VALUES (?, ?, {now}, {now} + ?) ON CONFLICT (name) DO UPDATE SET"
            " holder = excluded.holder, expires_at = excluded.expires_at,"
            " acquired_at = CASE WHEN synchub_leases.holder = excluded.holder"
            " THEN synchub_leases.acquired_at ELSE excluded.acquired_at END"
            " WHERE synchub_leases.holder = excluded.holder"
            " OR synchub_leases.expires_at < excluded.acquired_at"
        )
        self._take = (
            f"UPDATE synchub_leases SET holder = ?, acquired_at = {now}, expires_at = {now} + ?"
            " WHERE name = ? AND holder = ?"
        )

    def acquire(self, name: str) -> bool:
        """Take or renew the lease `name`; whether this process holds it now. A lease held by
        a process of this host that is gone (killed) is taken at once, not at its expiry."""
        with self.db.transaction(commit=True) as c:
            c.execute(self._acquire, (name, self.holder, self.span))
            c.execute("SELECT holder FROM synchub_leases WHERE name = ?", (name,))
            row = c.fetchone()
            if row is not None and row[0] != self.holder and _gone(str(row[0])):
                c.execute(self._take, (self.holder, self.span, name, row[0]))
                log.info("%s: its holder %s is gone, taking it now", name, row[0])
                return True
        return row is not None and row[0] == self.holder

    def release(self, names: list[str] | None = None) -> None:
        """Give up `names` (default: every lease this process holds), for another to take
        at once (a clean stop)."""
        with self.db.transaction(commit=True) as c:
            if names is None:
                c.execute("DELETE FROM synchub_leases WHERE holder = ?", (self.holder,))
            else:
                for name in names:
                    c.execute(
                        "DELETE FROM synchub_leases WHERE name = ? AND holder = ?",
                        (name, self.holder),
                    )

    def all(self) -> list[Lease]:
        """Every lease, held or expired, by name."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                f"SELECT name, holder, acquired_at, expires_at, {self.db.dialect.now_us}"
                " FROM synchub_leases ORDER BY name"
            )
            return [
                Lease(str(n), str(h), int(a), int(e), int(now)) for n, h, a, e, now in c.fetchall()
            ]


class LeaseKeeper:
    """The leases one hub process works under: `hold(name)` before each piece of work, a
    heartbeat thread renewing what it holds every third of the lease's time (so a long pass
    keeps its work), and `close` giving everything up. `took_over(name)` is called when the
    process gets a lease it did not hold (its memory of that work may be stale)."""

    def __init__(self, leases: Leases, took_over: Callable[[str], None]) -> None:
        self.leases = leases
        self.took_over = took_over
        self.held: set[str] = set()
        self.elsewhere: set[str] = set()
        self._renewed: dict[str, float] = {}
        """When each held lease was last renewed (time.monotonic)."""
        """Leases asked for and held by another process, since `take_elsewhere`."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def hold(self, name: str) -> bool:
        """Whether this process holds (took or renewed) lease `name` now. One held and renewed
        less than a third of its time ago is answered without the database (the heartbeat
        renews it at that pace): a pass asks for each piece of work, the executor for each
        target at every round, and each renewal is a committed write."""
        with self._lock:
            renewed = self._renewed.get(name)
            fresh = renewed is not None and time.monotonic() - renewed < self.leases.span / 3e6
            if name in self.held and fresh:
                return True
        got = self.leases.acquire(name)
        with self._lock:
            if got:
                self._renewed[name] = time.monotonic()
            if got and name not in self.held:
                self.held.add(name)
                log.info("took over %s as %s", name, self.leases.holder)
                self.took_over(name)
                self._start_heartbeat()
            elif not got and name in self.held:
                self.held.discard(name)
                log.warning("lost %s: another hub process holds it now", name)
            if not got:
                self.elsewhere.add(name)
        return got

    def take_elsewhere(self) -> list[str]:
        """The leases held by others that were asked for since the last call, sorted."""
        with self._lock:
            names, self.elsewhere = sorted(self.elsewhere), set()
        return names

    def _start_heartbeat(self) -> None:
        if self._beat is None:
            self._beat = threading.Thread(target=self._heartbeat, name="leases", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.leases.span / 3_000_000):
            with self._lock:
                names = sorted(self.held)
            for name in names:
                try:
                    if self.leases.acquire(name):
                        with self._lock:
                            self._renewed[name] = time.monotonic()
                    else:
                        with self._lock:
                            self.held.discard(name)
                        log.warning("lost %s: another hub process holds it now", name)
                except Exception as e:  # the database away: the next pass says so
                    log.warning("could not renew %s: %s", name, e)

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=10)
        with self._lock:
            held, self.held = self.held, set()
        if held:
            try:
                self.leases.release(sorted(held))
            except Exception as e:  # they expire by themselves
                log.warning("could not give up %s: %s", ", ".join(sorted(held)), e)
