"""`synchub migrate --to postgresql://…`: copy the embedded store's log into an empty
PostgreSQL database and verify the copy (hub.store.migrate); the SQLite store is only read."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from hub.cli.app import DEFAULT, ConfigOpt, JsonOpt, app, existing_store, opening_store
from hub.cli.render import out, print_json, progress_bar
from hub.config import redact_url
from hub.store.migrate import migrate
from hub.store.postgres import PostgresEventStore
from hub.store.sqlite import SQLiteEventStore


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
    the clock, the stream heads. The SQLite store is left as it is."""
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
    }
    if as_json:
        print_json(result)
        return
    out.print(
        f"copied {done.events:,} events, {done.schemas} schemas and {done.appends:,} appends to "
        f"{escape(redact_url(to))}; verified (checksum {done.checksum[:16]}…). The SQLite "
        "store is unchanged."
    )
