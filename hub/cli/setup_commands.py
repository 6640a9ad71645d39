"""`synchub init`: a commented config and an example mapping to start from."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from hub.cli.app import DEFAULT, ConfigOpt, app
from hub.cli.render import err, out
from hub.config import EXAMPLE_CONFIG

EXAMPLE_MAPPING = """\
# Mapping: source objects -> canonical entities -> target objects. See docs/mappings.md.
name: default
entities:
  TimeEntry: {owner: legacy_erp}   # the system of record of time entries
sources:
  - system: legacy_erp
    object: time_entries
    entity: TimeEntry
    id: "$key"
    fields:
      person_id: "person"
      project_id: "project"
      date: "day | date"
      minutes: "minutes | int"
targets: []
"""


@app.command()
def init(
    config: ConfigOpt = DEFAULT,
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Write a commented config file (and an example mapping) to start from."""
    mapping = config.parent / "mapping.yaml"
    for path, text in ((config, EXAMPLE_CONFIG), (mapping, EXAMPLE_MAPPING)):
        if path.exists() and not force:
            err.print(
                f"[yellow]{escape(str(path))} exists; keeping it[/] (use --force to overwrite)"
            )
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.print(f"[green]wrote[/] {escape(str(path))}")
    for folder in ("inbox", "outbox"):
        (config.parent / folder).mkdir(exist_ok=True)
    out.print(
        f"Next: drop export files into {escape(str(config.parent / 'inbox'))} and run "
        f"[bold]synchub sync --once --config {escape(str(config))}[/]"
    )
