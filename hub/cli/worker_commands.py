"""`synchub worker outbound --target NAME`: one member of a target's outbound consumer group
(hub.publish.worker)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
from typing import Annotated, Any

import typer
from rich.markup import escape

from hub.cli.app import DEFAULT, ConfigOpt, app, existing_store
from hub.cli.render import err, out
from hub.errors import SyncHubError
from hub.outbound.executor import Executor
from hub.plugins import build_connector
from hub.publish.worker import OutboundWorker, WorkerReport
from hub.store.open import open_store

worker_app = typer.Typer(help="Distributed workers (a Kafka consumer group per target).")
app.add_typer(worker_app, name="worker")


@worker_app.command("outbound")
def outbound(
    target: Annotated[str, typer.Option("--target", help="The target connector to write to.")],
    config: ConfigOpt = DEFAULT,
    member: Annotated[
        str | None,
        typer.Option(
            "--member",
            help="This member's stable id in the group (static membership: a restart keeps "
            "its partitions). Default: $SYNCHUB_PROCESS_NAME, else host-target.",
        ),
    ] = None,
) -> None:
    """Write TARGET's pending writes as they are published (kafka.outbound_targets), with the
    other workers of TARGET's group, until Ctrl-C or SIGTERM. Offsets are stored only after
    each write's outcome is recorded in the store."""
    settings = existing_store(config)
    kafka = settings.kafka
    if kafka is None or target not in kafka.outbound_targets:
        raise SyncHubError(
            f"{target!r} is not in kafka.outbound_targets in {config}: add it there, so "
            "`synchub run` publishes its writes for the workers instead of writing them itself"
        )
    section = settings.connectors.get(target)
    if section is None:
        raise SyncHubError(f"no connector {target!r} in {config}: name one of connectors:")
    sink = build_connector(target, section.type, section.options(), settings.base_dir).sink()
    if sink is None:
        raise SyncHubError(f"connector {target!r} ({section.type}) does not write (no sink)")
    store = open_store(settings.store_url)
    executor = Executor(store, {target: sink}, settings.outbound, redact=settings.redact)
    worker = OutboundWorker(
        store,
        kafka,
        target,
        sink,
        executor,
        member=member or os.environ.get("SYNCHUB_PROCESS_NAME"),
        options=settings.kafka_options("consumer"),
    )
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        err.print(f"[yellow]{signal.Signals(signum).name}: finishing the batch, then stopping[/]")
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    out.print(f"worker {escape(worker.member)}: writing to {escape(target)}; Ctrl-C to stop")

    def on_batch(r: WorkerReport) -> None:
        a = r.attempts
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        out.print(
            f"{stamp} partitions {r.assigned} · messages {r.messages} · applied {a.applied} · "
            f"retried {a.retryable} · rejected {a.rejected} · already settled {r.stale}"
        )

    try:
        worker.run(stop, on_batch)
    finally:
        sink.close()
        store.close()
    out.print("stopped cleanly")
