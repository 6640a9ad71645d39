"""Finding connector classes: the `synchub.connectors` entry-point group.

A connector package registers its class under the group, with the `type` users write in the
config as the entry point's name:

    [project.entry-points."synchub.connectors"]
    acme = "acme_connector:AcmeConnector"

and is installed (`pip install -e .`) into the venv synchub runs from. Every way this can go
wrong (type not installed, one type registered twice, an entry point that does not import, a
class that cannot be built) is a ConfigError naming the connector, the entry point and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from hub.errors import ConfigError, SyncHubError
from hub.spi import Connector

GROUP = "synchub.connectors"


def connector_types() -> dict[str, Any]:
    """Installed connector types: name → entry point."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _origin(ep: EntryPoint) -> str:
    """`'value' (from distribution x 1.2)`: which entry point, installed by which package."""
    dist = getattr(ep, "dist", None)
    where = f" (from distribution {dist.name} {dist.version})" if dist is not None else ""
    return f"{ep.value!r}{where}"


def build_connector(name: str, type_: str, options: Mapping[str, Any], base_dir: Path) -> Connector:
    """Instantiate connector `name` of type `type_` from its config options.

    Raises ConfigError when the type is not installed, registered twice, does not import or
    is not a connector class; errors the connector raises on purpose (ConnectorError for a bad
    option) pass through unchanged; anything else it raises is reported as a bug of its package.
    """
    where = f"connector {name!r} (`connectors.{name}.type: {type_}`)"
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == type_]
    if not matches:
        installed = sorted({ep.name for ep in entry_points(group=GROUP)})
        raise ConfigError(
            f"{where}: type {type_!r} is not installed; installed types: "
            f"{', '.join(installed) or 'none'}. Fix the type, or install the package that "
            f"registers it under the {GROUP!r} entry-point group into the venv synchub runs "
            f"from (`pip install -e <package>`)"
        )
    if len({ep.value for ep in matches}) > 1:
        raise ConfigError(
            f"{where}: type {type_!r} is registered by more than one installed package: "
            f"{'; '.join(_origin(ep) for ep in matches)}. Uninstall one, or rename the entry "
            f'point in one package\'s [project.entry-points."{GROUP}"] and reinstall it'
        )
    ep = matches[0]
    try:
        cls = ep.load()
    except Exception as e:
        raise ConfigError(
            f"{where}: the entry point {_origin(ep)} cannot be loaded: "
            f"{type(e).__name__}: {e}. Check that the module and class it names exist, that "
            f"the package's dependencies are installed in this venv, and reinstall the package "
            f"after changing its entry points"
        ) from e
    if not callable(cls):
        raise ConfigError(
            f"{where}: the entry point {_origin(ep)} names an object of type "
            f"{type(cls).__name__}, not a "
            f"connector class: point it at a class built as Cls(name, options, base_dir)"
        )
    try:
        connector: Connector = cls(name, dict(options), base_dir)
    except SyncHubError:
        raise  # ConnectorError / ConfigError: the connector's own message says what to fix
    except Exception as e:
        raise ConfigError(
            f"{where}: building it as {ep.value}(name, options, base_dir) failed with "
            f"{type(e).__name__}: {e}. If an option is wrong, fix it; the connector should "
            f"raise ConnectorError naming the option (report it to the maintainers of "
            f"{_origin(ep)})"
        ) from e
    missing = [m for m in ("source", "sink") if not callable(getattr(connector, m, None))]
    if missing:
        raise ConfigError(
            f"{where}: {ep.value} built a {type(connector).__name__} without "
            f"{' and '.join(f'{m}()' for m in missing)}: a connector offers source() and "
            f"sink(), each returning its side or None (see hub.spi.Connector)"
        )
    return connector
