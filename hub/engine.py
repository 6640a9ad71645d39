"""The hub: wires settings, store, connectors, projections and outbound into passes.

One pass (`sync_once`): deploy the mapping if it changed → ingest every source → project →
plan → project → execute due writes (retrying within `outbound.max_wait`) → project.
`run` repeats passes every `poll_interval` seconds until stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from hub.canonical_schemas import CanonicalSchemas
from hub.config import Settings
from hub.errors import StoreUnavailable, SyncHubError
from hub.exception_actions import record_exception_action, reingest
from hub.ingest import Ingestor, IngestReport, ReconcileRefused, now_micros
from hub.mapping import Mapping
from hub.mapping.deploy import deploy_mapping, deployed_canonical
from hub.outbound import Executor, ExecutorReport, Planner, PlannerReport
from hub.perf import GcBetweenPasses
from hub.plugins import build_connector
from hub.publish.batch_encoder import PublishForm
from hub.publish.publisher import PublishReport
from hub.publish.service import PublishFailed, Publishing
from hub.registry import SourceSchemas
from hub.schemas import hub_schema
from hub.spi import Connector, ReadsBack, Sink, Source
from hub.store.leases import LeaseKeeper, Leases, new_holder
from hub.store.open import open_store
from hub.store.streams import (
    EventType,
    ExceptionKind,
    connector_errors_stream,
)
from hub.watch import Watch
from projections import Projector, bi_views
from projections import exceptions as exc


@dataclass
class PassReport:
    """What one sync pass did."""

    deployed: int | None = None
    ingest: list[IngestReport] = field(default_factory=list)
    projected: int = 0
    planned: PlannerReport = field(default_factory=PlannerReport)
    elsewhere: list[str] = field(default_factory=list)
    """Work this pass left to another hub process that holds it (leases: ingest/<connector>,
    plan, outbound/<target>)."""
    executed: ExecutorReport = field(default_factory=ExecutorReport)
    errors: list[str] = field(default_factory=list)
    open_exceptions: int = 0
    seconds: float = 0.0
    """How long the pass took (wall clock)."""
    indicators: dict[str, Any] | None = None
    objectives: list[dict[str, Any]] = field(default_factory=list)
    """With `slos:` configured: the indicators after the pass and each objective's state."""
    published: PublishReport | None = None
    """With `kafka:` configured, in the process holding the `publish` lease."""


class Hub:
    """Everything one synchub process needs, built once from Settings."""

    def __init__(
        self,
        settings: Settings,
        connectors: dict[str, Connector] | None = None,
        *,
        rebuild_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """`connectors` overrides building them from the config (tests, embedding);
        `rebuild_progress` reports the rebuild of projection tables an older synchub wrote."""
        self.settings = settings
        if connectors is None:  # first: a secret that is not set fails before the store opens
            connectors = {
                name: build_connector(name, section.type, section.options(), settings.base_dir)
                for name, section in settings.connectors.items()
            }
        self.store = open_store(settings.store_url)
        self.schemas = SourceSchemas(self.store)
        # publishing: the catch-ups make each change's published form (the publisher sends it)
        form = PublishForm() if settings.kafka else None
        self.projector = Projector(self.store, progress=rebuild_progress, publish_form=form)
        self.connectors: dict[str, Connector] = {}
        self.sources: dict[str, Source] = {}
        self.sinks: dict[str, Sink] = {}
        for name, connector in connectors.items():
            self.connectors[name] = connector
            source = connector.source()
            sink = connector.sink()
            if source is not None:
                self.sources[name] = source
            if sink is not None:
                self.sinks[name] = sink
        self.ingestors = {
            name: Ingestor(self.store, name, src, settings.ingest, self.schemas)
            for name, src in self.sources.items()
        }
        self.planner = Planner(
            self.store,
            set(self.sinks),
            {n: s for n, s in self.sinks.items() if isinstance(s, ReadsBack)},
        )
        self.executor = Executor(
            self.store,
            self.sinks,
            settings.outbound,
            redact=lambda text: self.settings.redact(text),  # secrets never reach events
        )
        self.watch = Watch(self.store, settings)
        self.publishing = Publishing(self.store, settings) if settings.kafka else None
        self._distributed = set(settings.kafka.outbound_targets) if settings.kafka else set()
        """Targets written by `synchub worker outbound` processes, not by this one."""
        self._last_reconcile: dict[str, float] = {}
        self.last_errors: dict[str, str] = {}
        self._views_for: Any = ...  # the canonical schemas the BI views were made for
        self.leases = LeaseKeeper(
            Leases(self.store.db, new_holder(), settings.store.lease_seconds), self._took_over
        )

    def _took_over(self, name: str) -> None:
        """This process now holds lease `name` (first, or after another process did the work):
        what it kept in memory of that work may be stale, so it starts afresh from the store."""
        kind, _, which = name.partition("/")
        if kind == "publish" and self.publishing is not None:
            self.publishing.reset()
        if kind == "ingest" and which in self.ingestors:
            self.ingestors[which] = Ingestor(
                self.store, which, self.sources[which], self.settings.ingest, self.schemas
            )

    def close(self) -> None:
        """Stop: give up every lease (another process takes the work at once), close all."""
        self.leases.close()
        self.watch.close()
        if self.publishing is not None:
            self.publishing.close()
        for src in self.sources.values():
            src.close()
        for sink in self.sinks.values():
            sink.close()
        self.store.close()

    # -- mapping --------------------------------------------------------------------------------

    def deployed_mapping(self) -> Mapping | None:
        return self.projector.fold.mapping

    def deploy_mapping(self, *, force: bool = False) -> int | None:
        """Deploy the config's mapping file if its content changed; returns the new version
        (hub.mapping.deploy)."""
        path = self.settings.mapping_path
        if path is None:
            return None
        return deploy_mapping(self.store, path, self.canonical_schemas(), force=force)

    def refresh_views(self, *, force: bool = False) -> list[str]:
        """Make the BI views (projections.bi_views) for the deployed canonical schemas, when
        they changed since this process last made them (or `force`); their names."""
        canonical = deployed_canonical(self.store, self.deployed_mapping())
        if canonical == self._views_for and not force:
            return []
        made = bi_views.refresh(self.store.db, CanonicalSchemas.from_json(canonical))
        self._views_for = canonical
        return made

    def canonical_schemas(self) -> CanonicalSchemas:
        """The canonical schemas of the config (the built-in ones and the firm's own, checked:
        SchemaError / IncompatibleSchemaError naming the file to fix)."""
        return CanonicalSchemas.load(self.settings.canonical_schemas_path)

    def _encode(self, schema_name: str, record: dict[str, Any]) -> bytes:
        """`record` encoded with the hub schema `schema_name` (added to the codec)."""
        schema = hub_schema(schema_name)
        self.store.codec.add(schema)
        return self.store.codec.encode(schema, record)

    # -- passes ---------------------------------------------------------------------------------

    def ingest(
        self,
        *,
        progress: Callable[[str, int], None] | None = None,
        reconcile: bool = False,
        reconcile_force: bool = False,
        only: Collection[str] | None = None,
        reconcile_only: Collection[str] = (),
    ) -> list[IngestReport]:
        """Read every source (or `only` those, reconciling just `reconcile_only`) into the
        store."""
        reports = []
        for name in list(self.ingestors):
            if only is not None and name not in only:
                continue
            if not self.leases.hold(f"ingest/{name}"):
                continue  # another hub process captures this connector
            ingestor = self.ingestors[name]
            cb = (lambda n, _name=name: progress(_name, n)) if progress else None
            report = IngestReport(name)  # what was stored stays counted if a step then fails
            try:
                ingestor.run_once(progress=cb, report=report)
                due = (
                    time.time() - self._last_reconcile.get(name, 0)
                    >= self.settings.ingest.reconcile_every
                )
                if (
                    name in reconcile_only
                    if only is not None
                    else (reconcile or reconcile_force or due)
                ):
                    self._last_reconcile[name] = time.time()
                    report.deleted_by_reconciliation = ingestor.reconcile(force=reconcile_force)
                self.last_errors.pop(name, None)
            except StoreUnavailable:
                raise  # not the connector's failure: the pass stops, run() tries again
            except Exception as e:  # one connector's failure never stops the others
                text = (
                    str(e)
                    if isinstance(e, SyncHubError | OSError)
                    else (
                        f"{type(e).__name__}: {e} (unexpected: a defect of connector {name}'s "
                        "source; its maintainers need this message)"
                    )
                )
                message = self.settings.redact(text)  # secrets never reach events or output
                if isinstance(e, ReconcileRefused):
                    report.reconcile_refused = message
                report.errors.append(f"{name}: {message}")
                self.last_errors[name] = message
                self._record_failure(name, message)
            reports.append(report)
        return reports

    def _record_failure(self, name: str, error: str) -> None:
        payload = {"connector": name, "error": error[:2000], "at": now_micros()}
        self.store.append_next(
            connector_errors_stream(name),
            EventType.CONNECTOR_FAILED,
            self._encode("connector_failed", payload),
        )

    def sync_once(
        self,
        *,
        progress: Callable[[str, int], None] | None = None,
        reconcile: bool = True,
        reconcile_force: bool = False,
        wait: bool = True,
    ) -> PassReport:
        started = time.perf_counter()
        report = PassReport()
        report.deployed = self.deploy_mapping()
        self.refresh_views()
        report.ingest = self.ingest(
            progress=progress, reconcile=reconcile, reconcile_force=reconcile_force
        )
        report.errors = [e for r in report.ingest for e in r.errors]
        report.projected = self.projector.catch_up()
        if self.leases.hold("plan"):
            report.planned = self.planner.plan(self.deployed_mapping())
        report.projected += self.projector.catch_up()
        deadline = time.time() + (self.settings.outbound.max_wait if wait else 0)
        while True:
            self.executor.working = {
                t
                for t in self.sinks
                if t not in self._distributed and self.leases.hold(f"outbound/{t}")
            }
            self.executor.run_due(report.executed)
            report.projected += self.projector.catch_up()
            wait_s = self.executor.next_due_in()
            if wait_s is None or time.time() + wait_s > deadline:
                break
            time.sleep(wait_s)
        # Read our own writes back in the same pass (the echo): the pass ends with the targets'
        # new state captured, so the next pass, with nothing changed anywhere, is idle.
        written = [
            name
            for name, counts in report.executed.by_target.items()
            if counts.get("applied") and name in self.ingestors
        ]
        if written:
            first = {r.connector: r for r in report.ingest}
            deleted = report.executed.deleted_from
            for echo in self.ingest(progress=progress, only=written, reconcile_only=deleted):
                first[echo.connector].add(echo)
                report.errors += echo.errors
            report.projected += self.projector.catch_up()
        report.executed.waiting = len(self.executor.active())
        if self.publishing is not None and self.leases.hold("publish"):
            try:
                report.published = self.publishing.publish()
            except PublishFailed as e:
                report.errors.append(self.settings.redact(str(e)))
        report.elsewhere = self.leases.take_elsewhere()
        report.open_exceptions = self.open_exceptions()
        if self.settings.slos:
            report.indicators, report.objectives = self.watch.after_pass()
        report.seconds = time.perf_counter() - started
        return report

    def run(
        self,
        stop: threading.Event,
        on_pass: Callable[[PassReport], None] | None = None,
        on_unavailable: Callable[[str | None, float], None] | None = None,
    ) -> None:
        """Pass after pass until `stop` is set; a pass is never interrupted halfway. When the
        store cannot be reached, the pass stops where it is (every step is atomic) and the
        next one is tried after a growing pause (poll interval, doubled up to a minute):
        `on_unavailable(message, pause)` is told, and `on_unavailable(None, 0)` once it is
        back."""
        pause = self.settings.poll_interval
        down = False
        with GcBetweenPasses() as collector:
            while not stop.is_set():
                try:
                    report = self.sync_once(reconcile=False, wait=False)
                except StoreUnavailable as e:
                    self.afresh()
                    collector.full()
                    if on_unavailable is not None:
                        on_unavailable(str(e), pause)
                    down = True
                    stop.wait(pause)
                    pause = min(60.0, pause * 2)
                    continue
                if down and on_unavailable is not None:
                    on_unavailable(None, 0)
                down, pause = False, self.settings.poll_interval
                if on_pass is not None:
                    on_pass(report)
                collector.between()  # the collector's long walks here, not inside a pass
                stop.wait(self.settings.poll_interval)

    def afresh(self) -> None:
        """Forget what this process keeps in memory of the store (after a pass failed
        halfway): the next pass starts from what the store holds."""
        for name in self.ingestors:
            self._took_over(f"ingest/{name}")
        self.projector.forget()

    # -- queries --------------------------------------------------------------------------------

    def open_exceptions(self) -> int:
        with self.store.db.transaction(commit=False) as c:
            return exc.open_count(c)

    # -- exceptions -----------------------------------------------------------------------------

    def act_on_exception(
        self, exception_id: str, action: str, note: str = "", by: str | None = None
    ) -> dict[str, Any]:
        """Record an operator action (retry | resolve | ignore) and carry it out."""
        row = record_exception_action(self.store, self.projector, exception_id, action, note, by)
        if action == "retry" and row["kind"] == ExceptionKind.QUARANTINE:
            reingest(self.store, self.ingestors, row)
        self.projector.catch_up()
        if action == "retry" and row["kind"] in (ExceptionKind.WRITE, ExceptionKind.PLAN):
            self.sync_once(reconcile=False, wait=True)
        result = self.exception(exception_id)
        assert result is not None
        return result

    def exception(self, exception_id: str) -> dict[str, Any] | None:
        """One exception (every column, `details` as stored), or None."""
        with self.store.db.transaction(commit=False) as c:
            return exc.by_id(c, exception_id)
