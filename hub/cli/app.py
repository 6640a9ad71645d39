"""The typer apps, the options every command shares, and how commands open the store or the hub."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from hub.cli.render import err, say_upgraded, upgrade_bar
from hub.config import DEFAULT_CONFIG, Settings, load_settings, redact_url
from hub.engine import Hub
from hub.errors import SyncHubError
from hub.publish.batch_encoder import PublishForm
from hub.store.base import EventStore
from hub.store.open import open_store, store_exists
from hub.store.sqlite import DATABASE_ERRORS
from projections import Projector

app = typer.Typer(
    help="synchub — capture every change, project canonical state, write back minimal deltas.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
exceptions_app = typer.Typer(
    help="Inspect and act on exceptions (the error queue).", no_args_is_help=True
)
events_app = typer.Typer(help="Read raw facts from the event store, decoded.", no_args_is_help=True)
app.add_typer(exceptions_app, name="exceptions")
app.add_typer(events_app, name="events")

DEFAULT = Path(DEFAULT_CONFIG)


def _config_of(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    """The config a command uses: its own --config if given on the command line (the later
    one wins), else the one given before the command (`synchub -c FILE status`), which falls
    back to $SYNCHUB_CONFIG, then ./synchub.yaml."""
    source = ctx.get_parameter_source(param.name or "config")
    if source is not None and source.name == "COMMANDLINE":
        return value
    before: Path | None = ctx.find_root().params.get("config")
    return before if before is not None else value


ConfigOpt = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="SYNCHUB_CONFIG",
        help="Config file. Also accepted before the command (synchub -c FILE status); "
        "given in both places, this one (after the command) wins.",
        show_default=True,
        callback=_config_of,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", metavar="TIME", help="ISO time: as the hub knew it then (UTC if no offset)."
    ),
]
AtOpt = Annotated[
    int | None,
    typer.Option(
        "--at", metavar="POSITION", help="Event position: as the hub knew it after that event."
    ),
]


@app.callback()
def _root(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            envvar="SYNCHUB_CONFIG",
            help="Config file for the command; a --config after the command wins over it.",
            show_default=True,
        ),
    ] = DEFAULT,
) -> None:
    """The options given before the command; commands read them from the root context."""


def main() -> None:
    # the connection pool logs each broken connection it drops (a server restart: all of
    # them); the hub says what happened once, in its own words (Hub.run)
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    # librdkafka's own lines (a broker that cannot be reached, once per retry): the pass says
    # it once, with what to do (hub.publish)
    logging.getLogger("synchub.kafka").setLevel(logging.CRITICAL)
    try:
        app()
    except SyncHubError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        sys.exit(1)


def existing_store(config: Path) -> Settings:
    """The settings, once it is sure the event store they name exists."""
    settings = load_settings(config)
    if not store_exists(settings.store_url):
        raise SyncHubError(
            f"no event store at {redact_url(settings.store_url)} yet: run "
            f"`synchub sync --once --config {config}` first"
        )
    return settings


@contextmanager
def opening_store(settings: Settings, config: Path) -> Iterator[None]:
    """SQLite's own errors when opening the store, said with the setting to fix."""
    try:
        yield
    except DATABASE_ERRORS as e:
        raise SyncHubError(
            f"cannot open the event store {redact_url(settings.store_url)} ({e}): "
            f"check `store.path` (or `store.url`) in {config}; it must name an SQLite file or"
            " a new file's path"
        ) from e


@contextmanager
def reader(config: Path) -> Iterator[tuple[Settings, EventStore, Projector]]:
    """Store + caught-up projections, without starting connectors (for read commands)."""
    settings = existing_store(config)
    with opening_store(settings, config):
        store = open_store(settings.store_url)
    try:
        form = PublishForm() if settings.kafka else None  # as `synchub run` makes them
        with upgrade_bar() as progress:
            projector = Projector(store, progress=progress, publish_form=form)
        say_upgraded(projector)
        projector.catch_up()
        yield settings, store, projector
    finally:
        store.close()


@contextmanager
def open_hub(config: Path, *, existing: bool = False) -> Iterator[Hub]:
    """The hub with its connectors; `existing`: only on a store that exists already."""
    settings = existing_store(config) if existing else load_settings(config)
    with opening_store(settings, config), upgrade_bar() as progress:
        hub = Hub(settings, rebuild_progress=progress)
    say_upgraded(hub.projector)
    try:
        yield hub
    finally:
        hub.close()
