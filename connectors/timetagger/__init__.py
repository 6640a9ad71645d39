"""TimeTagger: time records and per-tag metadata of one or several TimeTagger accounts (one per
person, option `accounts`), over the HTTP API.

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
from hub.spi import ConnectorError

__all__ = ["TimeTaggerClient", "TimeTaggerConnector", "TimeTaggerSink", "TimeTaggerSource"]


class TimeTaggerConnector:
    """A timetagger config section; options are validated here (ConnectorError if bad)."""

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None:
        self.name = name
        self.options: TimeTaggerOptions = load_options(name, options)

    def client(self, person: str | None = None) -> TimeTaggerClient:
        """A new API client for the `token` account, or for `person`'s with `accounts`."""
        opts = self.options
        if opts.accounts is None:
            token = opts.token
        elif person in opts.accounts:
            token = opts.accounts[person]
        else:
            raise ConnectorError(
                f"connector {self.name!r} (timetagger) has no account {person!r}; "
                f"its accounts are {sorted(opts.accounts)}"
            )
        assert token is not None  # the options name one account or several
        return TimeTaggerClient(
            opts.url, token.get_secret_value(), timeout=opts.timeout, rate_limit=opts.rate_limit
        )

    def accounts(self) -> TimeTaggerClient | dict[str, TimeTaggerClient]:
        """The client of the `token` account, or person → client with `accounts`."""
        if self.options.accounts is None:
            return self.client()
        return {person: self.client(person) for person in self.options.accounts}

    def source(self) -> TimeTaggerSource:
        """A source over the accounts' records and tag metadata."""
        opts = self.options
        return TimeTaggerSource(
            self.name, self.accounts(), opts.lag, person=opts.person, tags_from=opts.tags_from
        )

    def sink(self) -> TimeTaggerSink:
        """A sink writing records and tag metadata into the accounts."""
        return TimeTaggerSink(self.name, self.accounts(), person=self.options.person)
