"""Tryton over JSON-RPC: the ERP (parties, employees, projects, tasks, timesheets, invoices)
and the CRM (`profile: crm`: parties, contacts, employees, opportunities).

Built by the `synchub.connectors` entry point as `TrytonConnector(name, options, base_dir)`.
`source()` polls the business objects (see `objects.OBJECTS`); `sink()` writes timesheet lines
to an ERP, billing notes on parties and opportunities to a CRM (note_sink.py).
Each side has its own logged-in client. See docs/connectors.md for the options.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.tryton.client import TrytonClient
from connectors.tryton.config import TrytonOptions, load_options
from connectors.tryton.note_sink import TrytonNoteSink
from connectors.tryton.objects import OBJECTS
from connectors.tryton.sink import TrytonSink
from connectors.tryton.source import TrytonSource

__all__ = ["OBJECTS", "TrytonConnector", "TrytonNoteSink", "TrytonSink", "TrytonSource"]


class TrytonConnector:
    """A `type: tryton` config section; options are validated here (ConnectorError if bad)."""

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None:
        self.name = name
        self.options: TrytonOptions = load_options(name, options)

    def client(self) -> TrytonClient:
        """A new client on the configured database (it logs in on first use)."""
        o = self.options
        return TrytonClient(
            o.url,
            o.database,
            o.user,
            o.password.get_secret_value(),
            timeout=o.timeout,
            rate_limit=o.rate_limit,
        )

    def source(self) -> TrytonSource:
        """A source over the configured objects (all by default)."""
        o = self.options
        return TrytonSource(
            self.name,
            self.client(),
            lag=o.lag,
            page_size=o.page_size,
            objects=o.objects,
            profile=o.profile,
            every=o.every,
        )

    def sink(self) -> TrytonSink | TrytonNoteSink:
        """A sink writing timesheet lines (an ERP), or billing notes (`profile: crm`)."""
        if self.options.profile == "crm":
            return TrytonNoteSink(self.name, self.client())
        return TrytonSink(self.name, self.client())
