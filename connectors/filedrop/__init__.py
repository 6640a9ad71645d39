"""Filedrop: exchange CSV / JSONL files with a system through a pair of directories.

Built by the `synchub.connectors` entry point as `FiledropConnector(name, options, base_dir)`.
`source()` reads the files another system drops in `directory`; `sink()` writes import files for
it into `outbox`. See docs/connectors.md for the options.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.filedrop.config import FiledropOptions, load_options
from connectors.filedrop.sink import FiledropSink
from connectors.filedrop.source import FiledropSource

__all__ = ["FiledropConnector", "FiledropSink", "FiledropSource"]


class FiledropConnector:
    """A filedrop config section; options are validated here (ConnectorError if bad)."""

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None:
        self.name = name
        self.options: FiledropOptions = load_options(name, options, base_dir)

    def source(self) -> FiledropSource | None:
        """A source over `directory`, or None when `directory` is not set."""
        if self.options.directory is None:
            return None
        return FiledropSource(self.name, self.options.directory, self.options.objects)

    def sink(self) -> FiledropSink | None:
        """A sink writing into `outbox`, or None when `outbox` is not set."""
        if self.options.outbox is None:
            return None
        return FiledropSink(self.name, self.options.outbox, self.options.outbox_format)
