"""The executor: applies planned deltas through sinks, at least once, never twice.

Every attempt and its outcome is a WriteAttempted event. A delta is re-sent until the sink says
applied or rejected; because each carries its idempotency key, a re-send after a crash (the
write happened, the event did not) is recognised by the sink and answered with the same id.

Retries: exponential backoff with jitter (`base_delay · 2^(n-1)`, capped at `max_delay`, times a
random factor in [0.5, 1)), never sooner than the target's Retry-After; after `max_attempts` the
delta is rejected with the last error. Each target has a token-bucket rate limit.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.config import OutboundSettings
from hub.crashpoints import crashpoint
from hub.ingest import now_micros
from hub.schemas import hub_schema
from hub.spi import Sink, WholeRecords
from hub.store.base import EventStore, NewEvent
from hub.store.streams import EventType, OutboundStatus, outbound_stream
from hub.types import Delta, Outcome
from projections import outbound
from projections.outbound import Pending


class RateLimiter:
    """Token bucket: `rate` writes per second, bursts up to `rate` (at least 1)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.stamp = clock()

    def acquire(self, n: int = 1) -> float:
        """Take `n` tokens, sleeping as needed; returns the seconds slept."""
        slept = 0.0
        for _ in range(n):
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1:
                wait = (1 - self.tokens) / self.rate
                self.sleep(wait)
                slept += wait
                self.tokens = 1.0
                self.stamp = self.clock()
            self.tokens -= 1
        return slept


@dataclass
class ExecutorReport:
    attempted: int = 0
    applied: int = 0
    retryable: int = 0
    rejected: int = 0
    waiting: int = 0
    slept: float = 0.0
    by_target: dict[str, dict[str, int]] = field(default_factory=dict)
    deleted_from: list[str] = field(default_factory=list)
    """Targets a delete was applied to (polling cannot see a hard delete: reconcile them)."""


class Executor:
    """Sends due deltas to their sinks and records every attempt."""

    def __init__(
        self,
        store: EventStore,
        sinks: dict[str, Sink],
        settings: OutboundSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        redact: Callable[[str], str] = str,
    ) -> None:
        """`redact` removes secrets from the reasons sinks give (they go into events)."""
        self.store = store
        self.redact = redact
        self.sinks = sinks
        self.settings = settings or OutboundSettings()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.limiters = {
            name: RateLimiter(self.settings.rate_limit_per_s, clock=clock, sleep=sleep)
            for name in sinks
        }
        self._jitter: dict[tuple[str, int], float] = {}
        self.working: Collection[str] | None = None
        """The targets this process writes to (those whose lease it holds); None: all."""
        self._schema = hub_schema("write_attempted")
        store.codec.add(self._schema)

    # -- scheduling -----------------------------------------------------------------------------

    def backoff(self, attempts: int, key: str) -> float:
        """Delay before attempt `attempts + 1` (without Retry-After)."""
        s = self.settings
        base = min(s.max_delay, s.base_delay * 2 ** max(attempts - 1, 0))
        jitter = self._jitter.setdefault((key, attempts), 0.5 + self.rng.random() / 2)
        return float(base * jitter)

    def due_at(self, row: Pending) -> float:
        """Wall-clock time at which the row may be attempted."""
        if row.status == OutboundStatus.PENDING or row.last_attempt_at is None:
            return 0.0
        delay = max(self.backoff(row.attempts, row.idempotency_key), row.retry_after or 0.0)
        return row.last_attempt_at / 1_000_000 + delay

    def active(self) -> list[Pending]:
        """Pending and retrying deltas of the targets this executor has sinks for."""
        targets = [t for t in self.sinks if self.working is None or t in self.working]
        if not targets:
            return []
        with self.store.db.transaction(commit=False) as c:
            return outbound.in_flight(c, targets)

    # -- one round ------------------------------------------------------------------------------

    def run_due(self, report: ExecutorReport | None = None) -> ExecutorReport:
        """Attempt every delta that is due now; returns when each got one attempt."""
        report = report or ExecutorReport()
        now = self.clock()
        rows = self.active()
        due = [r for r in rows if self.due_at(r) <= now]
        report.waiting = len(rows) - len(due)
        by_target: dict[str, list[Pending]] = {}
        for r in due:
            by_target.setdefault(r.target, []).append(r)
        for target, group in by_target.items():
            self.attempt(target, group, report)
        return report

    def next_due_in(self) -> float | None:
        """Seconds until the next waiting delta is due (None if nothing is active)."""
        rows = self.active()
        if not rows:
            return None
        return max(0.0, min(self.due_at(r) for r in rows) - self.clock())

    def attempt(self, target: str, rows: Sequence[Pending], report: ExecutorReport) -> list[str]:
        """Send `rows` to `target` now (whatever their due time), `outbound.batch_size` at a
        time, and record the outcomes; the status recorded for each (applied, retryable,
        rejected), in order."""
        # at most a second's worth of writes at a time: the rate limit's tokens are taken
        # before a batch is sent, so a bigger batch would wait for its whole quota up front
        # and then spend as long again writing (measured: bench/loop.py); and a target's
        # own limits stay untested past it (Tryton on SQLite refuses a search of 498 creates'
        # markers: measured with bench/workers.py --target tryton)
        step = max(1, min(self.settings.batch_size, int(self.limiters[target].capacity)))
        statuses: list[str] = []
        for i in range(0, len(rows), step):
            statuses += self._attempt(target, rows[i : i + step], report)
        return statuses

    def _attempt(self, target: str, rows: Sequence[Pending], report: ExecutorReport) -> list[str]:
        sink = self.sinks[target]
        whole = sink.whole_record_objects if isinstance(sink, WholeRecords) else frozenset()
        deltas = [
            Delta(
                target=r.target,
                object=r.object,
                canonical_id=r.canonical_id,
                target_key=r.target_key or r.applied_key,
                op=r.op,  # type: ignore[arg-type]
                fields=json.loads(
                    r.desired if r.object in whole and r.op != "delete" else r.fields
                ),
                idempotency_key=r.idempotency_key,
                attempt=r.attempts + 1,
            )
            for r in rows
        ]
        report.slept += self.limiters[target].acquire(len(deltas))
        started = time.perf_counter()
        try:
            outcomes = sink.apply(deltas)
            if len(outcomes) != len(deltas):
                raise RuntimeError(
                    f"sink {target} answered {len(outcomes)} outcomes for {len(deltas)} deltas "
                    "(the Sink contract requires exactly one per delta)"
                )
            answered = [o.idempotency_key for o in outcomes]
            if answered != [d.idempotency_key for d in deltas]:
                raise RuntimeError(  # recorded against the wrong records otherwise
                    f"sink {target} answered outcomes whose idempotency keys are not those of "
                    "its deltas, in order (the Sink contract requires one per delta, in order)"
                )
        except Exception as e:
            outcomes = [
                Outcome(d.idempotency_key, "retryable", reason=f"{type(e).__name__}: {e}")
                for d in deltas
            ]
        elapsed_ms = (time.perf_counter() - started) * 1000 / max(len(deltas), 1)
        crashpoint("outbound.before_record")
        at = now_micros()
        events = []
        statuses: list[str] = []
        for row, delta, outcome in zip(rows, deltas, outcomes, strict=True):
            status = outcome.status
            reason = None if outcome.reason is None else self.redact(outcome.reason)
            if status == "retryable" and delta.attempt >= self.settings.max_attempts:
                status = "rejected"
                reason = f"gave up after {delta.attempt} attempts; last error: {reason}"
            statuses.append(status)
            counts = report.by_target.setdefault(
                target, {"applied": 0, "retryable": 0, "rejected": 0}
            )
            counts[status] += 1
            if status == "applied" and delta.op == "delete" and target not in report.deleted_from:
                report.deleted_from.append(target)
            setattr(report, status, getattr(report, status) + 1)
            report.attempted += 1
            payload: dict[str, Any] = {
                "target": target,
                "object": row.object,
                "canonical_id": row.canonical_id,
                "idempotency_key": row.idempotency_key,
                "attempt": delta.attempt,
                "status": status,
                "target_key": outcome.target_key,
                "reason": reason,
                "retry_after": outcome.retry_after,
                "duration_ms": elapsed_ms,
                "at": at,
            }
            stream = outbound_stream(target, row.object, row.canonical_id)
            events.append((stream, payload))
        versions = self.store.heads([s for s, _ in events])
        new_events = []
        seen: dict[str, int] = {}
        for stream, payload in events:
            v = seen.get(stream, versions.get(stream, (0, b""))[0]) + 1
            seen[stream] = v
            new_events.append(
                NewEvent(
                    stream,
                    v,
                    EventType.WRITE_ATTEMPTED,
                    self.store.codec.encode(self._schema, payload),
                )
            )
        self.store.append(new_events)
        crashpoint("outbound.after_record")
        return statuses
