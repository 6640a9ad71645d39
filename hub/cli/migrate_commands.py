"""`synchub migrate --to postgresql://…`: copy the embedded store's log into an empty
PostgreSQL database and verify the copy (hub.store.migrate); the SQLite store is only read."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from hub.cli.app import DEFAULT, ConfigOpt, JsonOpt, app, existing_store, opening_store
from hub.cli.render import out, print_json, progress_bar
from hub.config import redact_url
from hub.errors import SyncHubError
from hub.store.base import EventStore
from hub.store.migrate import migrate
from hub.store.postgres import PostgresEventStore
from hub.store.sqlite import SQLiteEventStore
from projections import Projector
from projections.runner import caught_up, checksums


@app.command("migrate")
def migrate_command(
    to: Annotated[
        str,
        typer.Option(
            "--to", metavar="URL", help="postgresql://user:password@host:port/db (an empty one)."
        ),
    ],
    config: ConfigOpt = DEFAULT,
    as_json: JsonOpt = False,
) -> None:
    """Copy the event store (events with their positions, schemas, the clock) into an empty
    PostgreSQL database in one transaction, then verify it: counts, a checksum of every event,
    the clock, the stream heads; build the projections there and compare their checksums with
    the SQLite store's. The SQLite store is left as it is."""
    if not to.startswith(("postgresql://", "postgres://")):
        raise typer.BadParameter("--to takes a postgresql:// URL")
    settings = existing_store(config)
    with opening_store(settings, config):
        source = SQLiteEventStore(str(settings.store_path))
    try:
        target = PostgresEventStore(to)  # StoreError says why it cannot connect
        try:
            with progress_bar("copying events", quiet=as_json) as bar:
                task = bar.add_task("copying events", total=source.head())
                done = migrate(source, target, lambda n, total: bar.update(task, completed=n))
            projections = _build_projections(source, target, quiet=as_json)
        finally:
            target.close()
    finally:
        source.close()
    result = {
        "to": redact_url(to),
        "events": done.events,
        "schemas": done.schemas,
        "appends": done.appends,
        "checksum": done.checksum,
        "projections": projections,
    }
    if as_json:
        print_json(result)
        return
    compared = (
        "equal to the SQLite store's"
        if projections["compared"]
        else "not compared: the SQLite store's were behind its log"
    )
    out.print(
        f"copied {done.events:,} events, {done.schemas} schemas and {done.appends:,} appends to "
        f"{escape(redact_url(to))}; verified (checksum {done.checksum[:16]}…). Projections built"
        f" there up to position {projections['position']:,}, {compared}. The SQLite store is"
        " unchanged."
    )


def _build_projections(source: EventStore, target: EventStore, *, quiet: bool) -> dict[str, Any]:
    """Build the projections on `target` from the copied log and compare their checksums with
    the source's, when the source's are at its head (they are only read, never caught up)."""
    head = target.head()
    with progress_bar("building projections", quiet=quiet) as bar:
        task = bar.add_task("building projections", total=head)
        projector = Projector(target)
        projector.catch_up(progress=lambda n, total: bar.update(task, completed=n))
    built = projector.checksums()
    compared = caught_up(source.db, head)
    if compared and checksums(source.db) != built:
        differ = sorted(k for k, v in checksums(source.db).items() if built.get(k) != v)
        raise SyncHubError(
            f"the projections built on PostgreSQL differ from the SQLite store's ({', '.join(differ)}):"
            " please report this as a bug, with `synchub checksum` of both stores; the SQLite"
            " store is untouched"
        )
    return {"position": projector.position(), "compared": compared, "checksums": built}
