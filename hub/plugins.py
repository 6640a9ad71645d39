"""Finding connector classes: the `synchub.connectors` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from hub.errors import ConfigError
from hub.spi import Connector


def connector_types() -> dict[str, Any]:
    """Installed connector types: name → entry point."""
    return {ep.name: ep for ep in entry_points(group="synchub.connectors")}


def build_connector(name: str, type_: str, options: dict[str, Any], base_dir: Path) -> Connector:
    """Instantiate connector `name` of type `type_` from its config options."""
    types = connector_types()
    ep = types.get(type_)
    if ep is None:
        raise ConfigError(
            f"connector {name!r} has type {type_!r}, which is not installed; installed types: "
            f"{', '.join(sorted(types)) or 'none'} (is the package installed in this venv?)"
        )
    cls = ep.load()
    connector: Connector = cls(name, options, base_dir)
    return connector
