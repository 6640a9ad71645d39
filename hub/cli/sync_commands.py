"""`synchub sync` (one pass) and `synchub run` (pass after pass until stopped)."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hub import indicators
from hub.cli.app import DEFAULT, ConfigOpt, JsonOpt, app, open_hub
from hub.cli.render import err, out, print_json, progress_bar
from hub.engine import PassReport
from hub.metrics import HubMetrics


def _render_pass(report: PassReport) -> None:
    t = Table(title="sync pass", show_header=True, header_style="bold")
    t.add_column("connector")
    t.add_column("appended", justify="right")
    t.add_column("unchanged", justify="right")
    t.add_column("quarantined", justify="right")
    t.add_column("deleted (reconciled)", justify="right")
    t.add_column("ok")
    for r in report.ingest:  # the counts are of what was stored, also when a step then failed
        t.add_row(
            escape(r.connector),
            str(r.appended),
            str(r.skipped),
            str(r.quarantined),
            "[red]refused[/]" if r.reconcile_refused else str(r.deleted_by_reconciliation),
            "[red]failed[/]" if r.errors else "[green]yes[/]",
        )
    out.print(t)
    for r in report.ingest:  # below the table: a message is never cut
        for error in r.errors:
            if r.reconcile_refused and error.endswith(r.reconcile_refused):
                out.print(
                    f"[red]reconciliation refused:[/] {escape(r.connector)}: the "
                    f"{r.appended} change(s) captured are stored; no delete was recorded: "
                    f"{escape(r.reconcile_refused)}"
                )
            else:
                out.print(f"[red]error:[/] {escape(error)}")
    ex = report.executed
    if report.deployed:
        out.print(f"deployed mapping version [bold]{report.deployed}[/]")
    out.print(
        f"projected {report.projected} events · planned {report.planned.planned} writes"
        f" ({report.planned.failed} could not be planned) · applied {ex.applied},"
        f" retrying {ex.waiting}, rejected {ex.rejected}"
    )
    if report.elsewhere:
        out.print(
            "worked by another hub process (`synchub status` says which): "
            + escape(", ".join(report.elsewhere))
        )
    if report.published is not None:
        out.print(
            f"published {report.published.published} change(s) to Kafka"
            + (
                f" ({report.published.corrections} after a rebuild)"
                if report.published.corrections
                else ""
            )
        )
    colour = "red" if report.open_exceptions else "green"
    out.print(
        f"[{colour}]open exceptions: {report.open_exceptions}[/]"
        + ("  → `synchub exceptions list`" if report.open_exceptions else "")
    )


def _pass_dict(report: PassReport) -> dict[str, Any]:
    return {
        "deployed_mapping_version": report.deployed,
        "ingest": [vars(r) for r in report.ingest],
        "projected": report.projected,
        "planned": vars(report.planned),
        "executed": vars(report.executed),
        "open_exceptions": report.open_exceptions,
        "errors": report.errors,
        "elsewhere": report.elsewhere,
        "published": None if report.published is None else vars(report.published),
    }


@app.command()
def sync(
    config: ConfigOpt = DEFAULT,
    once: Annotated[bool, typer.Option("--once", help="One full pass (the default).")] = True,
    reconcile_force: Annotated[
        bool,
        typer.Option(help="Record deletes found by reconciliation even past the safety ratio."),
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Don't wait for retries within the pass.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """One full pass: capture, project, plan, write. Exit 0: clean; 2: open exceptions; 1: errors."""
    with open_hub(config) as hub:
        counts: dict[str, int] = {}
        with progress_bar("{task.description}", as_json) as bar:
            tasks: dict[str, Any] = {}

            def progress(name: str, n: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(f"capturing {name}", total=None)
                counts[name] = counts.get(name, 0) + n
                bar.update(tasks[name], completed=counts[name])

            report = hub.sync_once(
                progress=progress, reconcile=True, reconcile_force=reconcile_force, wait=not no_wait
            )
    if as_json:
        print_json(_pass_dict(report))
    else:
        _render_pass(report)
    if report.errors:
        raise typer.Exit(1)
    raise typer.Exit(2 if report.open_exceptions else 0)


@app.command()
def run(
    config: ConfigOpt = DEFAULT,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            metavar="PORT",
            help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics (0: a free port).",
        ),
    ] = None,
) -> None:
    """Sync continuously (every poll_interval seconds) until Ctrl-C or SIGTERM; then stop cleanly.

    A second Ctrl-C stops at once (exit code 130): every step is atomic with its checkpoint, so
    the next start goes on from the last one that completed. With --metrics-port, the
    metrics of docs/operations.md (business indicators included) are updated every pass."""
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            err.print(f"[yellow]{name} again: stopping now; the next start goes on from here[/]")
            raise KeyboardInterrupt
        err.print(
            f"[yellow]{name}: finishing the current pass, then stopping "
            "(Ctrl-C again to stop now)[/]"
        )
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    try:
        _run(config, stop, metrics_port)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    out.print("stopped cleanly")


def _run(config: Path, stop: threading.Event, metrics_port: int | None) -> None:
    with open_hub(config) as hub:
        metrics = None
        if metrics_port is not None:
            metrics = HubMetrics()
            metrics.serve(metrics_port)
            out.print(f"metrics on http://127.0.0.1:{metrics.port}/metrics")
        out.print(
            f"synchub running: store {escape(hub.store.location)}, "
            f"{len(hub.sources)} source(s), {len(hub.sinks)} sink(s); Ctrl-C to stop"
        )

        def on_pass(r: PassReport) -> None:
            if metrics is not None:
                metrics.record_pass(r, hub.store.head(), hub.projector.position())
                metrics.record_indicators(indicators.indicators(hub.store, hub.settings.indicators))
            appended = sum(i.appended for i in r.ingest)
            published = r.published.published if r.published is not None else 0
            if appended or r.planned.planned or r.executed.attempted or r.errors or published:
                stamp = dt.datetime.now().strftime("%H:%M:%S")
                out.print(
                    f"{stamp} captured {appended} · planned {r.planned.planned} · applied "
                    f"{r.executed.applied} · open exceptions {r.open_exceptions}"
                    + (f" · published {published}" if published else "")
                    + (f" · [red]{escape('; '.join(r.errors))}[/]" if r.errors else "")
                )

        def on_unavailable(message: str | None, pause: float) -> None:
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            if message is None:
                err.print(f"[green]{stamp} the store is back: going on[/]")
            else:
                err.print(
                    f"[yellow]{stamp} {escape(message)}; nothing was half-done: trying again"
                    f" in {pause:g} s[/]"
                )

        hub.run(stop, on_pass, on_unavailable)
