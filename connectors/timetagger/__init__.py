"""TimeTagger: time records and per-tag metadata of one TimeTagger account, over its HTTP API.

Built by the `synchub.connectors` entry point as `TimeTaggerConnector(name, options, base_dir)`.
`source()` polls records and tag metadata; `sink()` writes them (with verification). See
docs/connectors.md for the options and semantics.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.timetagger.client import TimeTaggerClient
from connectors.timetagger.config import TimeTaggerOptions, load_options
from connectors.timetagger.sink import TimeTaggerSink
from connectors.timetagger.source import TimeTaggerSource

__all__ = ["TimeTaggerClient", "TimeTaggerConnector", "TimeTaggerSink", "TimeTaggerSource"]


class TimeTaggerConnector:
    """A timetagger config section; options are validated here (ConnectorError if bad)."""

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None:
        self.name = name
        self.options: TimeTaggerOptions = load_options(name, options)

    def client(self) -> TimeTaggerClient:
        """A new API client for the configured account."""
        opts = self.options
        return TimeTaggerClient(opts.url, opts.token.get_secret_value(), timeout=opts.timeout)

    def source(self) -> TimeTaggerSource:
        """A source over the account's records and tag metadata."""
        return TimeTaggerSource(self.name, self.client(), self.options.lag)

    def sink(self) -> TimeTaggerSink:
        """A sink writing records and tag metadata into the account."""
        return TimeTaggerSink(self.name, self.client())
