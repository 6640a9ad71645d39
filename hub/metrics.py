"""Prometheus metrics of a running hub: `synchub run --metrics-port P` serves them on
127.0.0.1:P/metrics (the `prometheus_client` library's exposition), updated after every pass.

Counters count since the process started (Prometheus' `rate()` and `increase()` handle the
restarts); gauges are the state after the last pass, the business indicators included
(hub.indicators, as of that pass). docs/operations.md lists every metric with example alert
rules. Label values are connector, target and workflow names, project and legal entity ids and
currency codes: a firm's hundreds, never per record.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from hub.engine import PassReport

__all__ = ["PASS_BUCKETS", "HubMetrics"]

PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Pass durations (seconds): an idle pass takes tens of ms, a busy one seconds to minutes."""


class HubMetrics:
    """The hub's metrics in a registry of their own (several hubs in one process, tests)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.port: int | None = None
        self._head: int | None = None
        """The head after the previous pass (events appended = the difference)."""
        connector, target, obj = ["connector"], ["target"], ["connector", "object"]
        self.captured = Counter(
            "synchub_changes_captured", "Changes stored as new facts", obj, registry=r
        )
        self.unchanged = Counter(
            "synchub_changes_unchanged",
            "Changes read that equal the stored state (not stored again)",
            obj,
            registry=r,
        )
        self.quarantined = Counter(
            "synchub_changes_quarantined",
            "Input set aside as a quarantine exception",
            obj,
            registry=r,
        )
        self.connector_errors = Counter(
            "synchub_connector_errors", "Failed reads of a connector", connector, registry=r
        )
        self.events = Counter("synchub_events_appended", "Events appended to the store", registry=r)
        self.planned = Counter(
            "synchub_writes_planned", "Minimal deltas planned for a target", target, registry=r
        )
        self.writes = Counter(
            "synchub_writes",
            "Write attempts by outcome (applied, retryable: a retry follows, rejected)",
            ["target", "outcome"],
            registry=r,
        )
        self.passes = Counter("synchub_passes", "Sync passes run", registry=r)
        self.pass_seconds = Histogram(
            "synchub_pass_duration_seconds",
            "Duration of a sync pass",
            buckets=PASS_BUCKETS,
            registry=r,
        )
        self.head = Gauge("synchub_store_head_position", "Position of the last event", registry=r)
        self.lag = Gauge(
            "synchub_projection_lag_events",
            "Events in the store not yet folded into the projections",
            registry=r,
        )
        self.open_exceptions = Gauge(
            "synchub_open_exceptions",
            "Open exceptions per workflow and kind",
            ["workflow", "kind"],
            registry=r,
        )
        self.oldest_exception = Gauge(
            "synchub_oldest_open_exception_age_seconds",
            "Age of the oldest open exception per workflow and kind",
            ["workflow", "kind"],
            registry=r,
        )
        where = ["project", "legal_entity"]
        self.unposted_entries = Gauge(
            "synchub_unposted_entries", "Approved time entries not yet posted", where, registry=r
        )
        self.unposted_hours = Gauge(
            "synchub_unposted_hours", "Approved hours not yet posted", where, registry=r
        )
        self.unposted_value = Gauge(
            "synchub_unposted_value",
            "Value of the approved time not yet posted, per currency",
            [*where, "currency"],
            registry=r,
        )
        self.unposted_age = Gauge(
            "synchub_unposted_oldest_age_seconds",
            "Age of the oldest approved entry not yet posted",
            where,
            registry=r,
        )
        self.cutoff = Gauge(
            "synchub_invoice_cutoff_seconds",
            "Seconds left until the next invoice cut-off (per legal entity with unposted time)",
            ["legal_entity"],
            registry=r,
        )
        self.unprovisioned = Gauge(
            "synchub_deals_not_provisioned", "Won deals not provisioned yet", registry=r
        )
        self.latency = Gauge(
            "synchub_sync_latency_seconds",
            "Source change to write applied, over the latency window (stat: p50, p95, max)",
            ["workflow", "stat"],
            registry=r,
        )
        self.delayed_invoices = Gauge(
            "synchub_invoices_delayed", "Invoices held up by a synchronization error", registry=r
        )
        self.missing_billing = Gauge(
            "synchub_projects_missing_billing", "Open projects missing billing rules", registry=r
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve /metrics on addr:port from a daemon thread (0: a free port, see `port`)."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self.port = int(server.server_port)

    def record_pass(self, report: PassReport, head: int, projected: int) -> None:
        """Count one pass: what it captured, planned and wrote, and how long it took; `head`
        and `projected` are the store's last position and the projections' after it."""
        self.passes.inc()
        self.pass_seconds.observe(report.seconds)
        for ingest in report.ingest:
            name = ingest.connector
            for obj, (appended, skipped, quarantined) in ingest.by_object.items():
                self.captured.labels(name, obj).inc(appended)
                self.unchanged.labels(name, obj).inc(skipped)
                self.quarantined.labels(name, obj).inc(quarantined)
            self.connector_errors.labels(name).inc(len(ingest.errors))
        for target, n in report.planned.by_target.items():
            self.planned.labels(target).inc(n)
        for target, outcomes in report.executed.by_target.items():
            for outcome, n in outcomes.items():
                self.writes.labels(target, outcome).inc(n)
        if self._head is not None:
            self.events.inc(max(0, head - self._head))
        self._head = head
        self.head.set(head)
        self.lag.set(max(0, head - projected))

    def record_indicators(self, data: dict[str, Any]) -> None:
        """Set the business gauges from `hub.indicators.indicators()` (stale label sets go)."""
        for gauge in (
            self.unposted_entries,
            self.unposted_hours,
            self.unposted_value,
            self.unposted_age,
            self.cutoff,
            self.open_exceptions,
            self.oldest_exception,
            self.latency,
        ):
            gauge.clear()
        for row in data["unposted_time"]["rows"]:
            where = (row["project_id"], row["legal_entity_id"])
            self.unposted_entries.labels(*where).set(row["entries"])
            self.unposted_hours.labels(*where).set(float(row["hours"]))
            for v in row["values"]:
                self.unposted_value.labels(*where, v["currency"]).set(float(v["value"]))
            if row["oldest_age_s"] is not None:
                self.unposted_age.labels(*where).set(row["oldest_age_s"])
            self.cutoff.labels(row["legal_entity_id"]).set(row["cutoff_in_s"])
        for e in data["open_exceptions"]:
            self.open_exceptions.labels(e["workflow"], e["kind"]).set(e["count"])
            if e["oldest_age_s"] is not None:
                self.oldest_exception.labels(e["workflow"], e["kind"]).set(e["oldest_age_s"])
        for lat in data["sync_latency"]:
            for stat in ("p50", "p95", "max"):
                self.latency.labels(lat["workflow"], stat).set(lat[f"{stat}_s"])
        self.delayed_invoices.set(len(data["invoices_delayed"]))
        self.unprovisioned.set(len(data["deals_not_provisioned"]))
        self.missing_billing.set(len(data["projects_missing_billing"]))
