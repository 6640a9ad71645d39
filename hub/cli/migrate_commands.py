"""`synchub migrate --to postgresql://…`: copy the embedded store's log into an empty
PostgreSQL database and verify the copy (hub.store.migrate); the SQLite store is only read."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from hub.canonical_schemas import CanonicalSchemas
from hub.cli.app import DEFAULT, ConfigOpt, JsonOpt, app, existing_store, opening_store
from hub.cli.render import out, print_json, progress_bar
from hub.config import load_settings, redact_url
from hub.errors import SyncHubError
from hub.mapping.deploy import deployed_canonical
from hub.store.base import EventStore
from hub.store.migrate import migrate
from hub.store.open import open_store
from hub.store.postgres import PostgresEventStore
from hub.store.postgres_db import PostgresDatabase
from hub.store.sqlite import SQLiteEventStore
from projections import Projector, bi_views
from projections.runner import caught_up, checksums


@app.command("migrate")
def migrate_command(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="URL",
            help="Copy the SQLite store into this empty PostgreSQL database "
            "(postgresql://user:password@host:port/db).",
        ),
    ] = None,
    grant_read: Annotated[
        list[str] | None,
        typer.Option(
            "--grant-read",
            metavar="ROLE",
            help="Let this PostgreSQL role read the BI views (made NOLOGIN if missing; "
            "repeat for several).",
        ),
    ] = None,
    config: ConfigOpt = DEFAULT,
    as_json: JsonOpt = False,
) -> None:
    """Bring the store's tables to this synchub's version (also done on every start) and make
    the BI views (PostgreSQL). With --to: copy the SQLite store (events with their positions,
    schemas, the clock) into an empty PostgreSQL database in one transaction, verify it
    (counts, a checksum of every event, the clock, the stream heads), build the projections
    there and compare their checksums with the SQLite store's; the SQLite store is left as it
    is. --grant-read ROLE: that role may read the views, nothing else."""
    if to is not None and not to.startswith(("postgresql://", "postgres://")):
        raise typer.BadParameter("--to takes a postgresql:// URL")
    # a store to copy must exist; one to upgrade is made if missing (a first start)
    settings = existing_store(config) if to is not None else load_settings(config)
    result: dict[str, Any] = {}
    if to is None:
        with opening_store(settings, config):
            store = open_store(settings.store_url)  # upgraded as it opens
        try:
            result["store"] = store.location
            result["schema_version"] = _version(store)
            result.update(_read_side(store, grant_read or [], quiet=as_json))
        finally:
            store.close()
    else:
        with opening_store(settings, config):
            source = SQLiteEventStore(str(settings.store_path))
        try:
            target = PostgresEventStore(to)  # StoreError says why it cannot connect
            try:
                with progress_bar("copying events", quiet=as_json) as bar:
                    task = bar.add_task("copying events", total=source.head())
                    done = migrate(source, target, lambda n, total: bar.update(task, completed=n))
                projections = _build_projections(source, target, quiet=as_json)
                result = {
                    "to": redact_url(to),
                    "events": done.events,
                    "schemas": done.schemas,
                    "appends": done.appends,
                    "checksum": done.checksum,
                    "projections": projections,
                    "schema_version": _version(target),
                    **_read_side(target, grant_read or [], quiet=as_json),
                }
            finally:
                target.close()
        finally:
            source.close()
    if as_json:
        print_json(result)
        return
    if to is not None:
        compared = (
            "equal to the SQLite store's"
            if result["projections"]["compared"]
            else "not compared: the SQLite store's were behind its log"
        )
        out.print(
            f"copied {result['events']:,} events, {result['schemas']} schemas and"
            f" {result['appends']:,} appends to {escape(result['to'])}; verified (checksum"
            f" {result['checksum'][:16]}…). Projections built there up to position"
            f" {result['projections']['position']:,}, {compared}. The SQLite store is unchanged."
        )
    else:
        out.print(f"store {escape(result['store'])}: tables at version {result['schema_version']}")
    if result["views"]:
        out.print(f"BI views: {escape(', '.join(result['views']))}")
        if result["read_roles"]:
            out.print(f"readable by: {escape(', '.join(result['read_roles']))}")
    elif to is None:
        out.print("no BI views: they are made on PostgreSQL only (docs/postgresql.md)")


def _version(store: EventStore) -> int | None:
    """The store's table version (PostgreSQL's; the SQLite store's tables are the library's)."""
    versions = getattr(store, "schema_versions", None)
    return None if versions is None else int(versions[1])


def _read_side(store: EventStore, roles: list[str], *, quiet: bool) -> dict[str, Any]:
    """Grant `roles` and (re)make the BI views for the deployed canonical schemas."""
    db = store.db
    if roles and not isinstance(db, PostgresDatabase):
        raise SyncHubError("--grant-read needs a PostgreSQL store: roles are PostgreSQL's")
    made = [r for r in roles if isinstance(db, PostgresDatabase) and db.add_read_role(r)]
    projector = Projector(store)
    projector.catch_up()
    canonical = deployed_canonical(store, projector.fold.mapping)
    views = bi_views.refresh(db, CanonicalSchemas.from_json(canonical))
    for role in made:
        if not quiet:
            out.print(
                f"made role {escape(role)} (NOLOGIN): `GRANT {escape(role)} TO <user>` or "
                f"`ALTER ROLE {escape(role)} LOGIN PASSWORD '…'` to use it"
            )
    return {"views": views, "read_roles": db.read_roles(), "roles_made": made}


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
