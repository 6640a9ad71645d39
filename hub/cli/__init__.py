"""The `synchub` command line: parses, calls the hub, renders (rich tables or --json).

`app` holds the typer apps, the shared options and the way commands open the store or the hub;
`render` the rich helpers every command shares; one module per group of commands registers them
on `app` when imported, which this package does, so `synchub` (`hub.cli:main`) sees them all.
"""

from __future__ import annotations

from hub.cli.app import app, main

# Imported to register their commands, in the order `synchub --help` lists them.
# isort: off
from hub.cli import setup_commands, sync_commands, store_commands, rebuild  # noqa: F401
from hub.cli import valuation_commands, indicator_commands, report_commands  # noqa: F401
from hub.cli import exceptions, events, migrate_commands, publish_commands  # noqa: F401
from hub.cli import worker_commands  # noqa: F401
# isort: on

__all__ = ["app", "main"]
