"""Building connectors from entry points: every misconfiguration is a ConfigError that names the
connector, the entry point and the fix (never a bare traceback)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

import hub.plugins
from hub.errors import ConfigError, ConnectorError
from hub.plugins import build_connector
from hub.testing import MemorySink


class Good:
    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None:
        self.name, self.options, self.base_dir = name, options, base_dir

    def source(self) -> None:
        return None

    def sink(self) -> MemorySink:
        return MemorySink(self.name)


class TwoArgs:
    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        pass


class RaisesValueError(Good):
    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None:
        raise ValueError("database is required")


class RaisesConnectorError(Good):
    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None:
        raise ConnectorError(f"connector {name!r} (acme): database: required option is missing")


class NoSink:
    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None:
        pass

    def source(self) -> None:
        return None


NOT_A_CLASS = 42
HERE = __name__
GROUP = "synchub.connectors"


def installed(monkeypatch: pytest.MonkeyPatch, **types: str) -> None:
    """Pretend the installed entry points are `types` (name → 'module:attr', or a list)."""
    eps = []
    for name, values in types.items():
        for value in values.split(" | "):
            eps.append(EntryPoint(name, value, GROUP))

    def fake(*, group: str) -> list[EntryPoint]:
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(hub.plugins, "entry_points", fake)


def build(type_: str) -> Any:
    return build_connector("legacy_erp", type_, {"database": "x.db"}, Path("/cfg"))


def test_a_good_entry_point_builds_the_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, acme=f"{HERE}:Good")
    connector = build("acme")
    assert isinstance(connector, Good)
    assert (connector.name, connector.options, connector.base_dir) == (
        "legacy_erp",
        {"database": "x.db"},
        Path("/cfg"),
    )


def test_an_unknown_type_lists_the_installed_ones_and_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed(monkeypatch, acme=f"{HERE}:Good", filedrop=f"{HERE}:Good")
    with pytest.raises(ConfigError) as e:
        build("acmee")
    message = str(e.value)
    assert "'legacy_erp'" in message and "connectors.legacy_erp.type" in message
    assert "installed types: acme, filedrop" in message
    assert GROUP in message and "pip install" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tests_no_such_module_xyz:Connector", "ModuleNotFoundError"),
        (f"{HERE}:Missing", "AttributeError"),
    ],
)
def test_an_entry_point_that_does_not_import_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    installed(monkeypatch, acme=value)
    with pytest.raises(ConfigError) as e:
        build("acme")
    message = str(e.value)
    assert "'legacy_erp'" in message and repr(value) in message and expected in message
    assert "cannot be loaded" in message and "reinstall" in message


def test_an_entry_point_that_is_not_a_class_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed(monkeypatch, acme=f"{HERE}:NOT_A_CLASS")
    with pytest.raises(ConfigError, match=r"names an object of type int, not a connector class"):
        build("acme")


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        ("TwoArgs", "TypeError"),
        ("RaisesValueError", "ValueError: database is required"),
    ],
)
def test_a_class_that_fails_to_build_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, cls: str, expected: str
) -> None:
    installed(monkeypatch, acme=f"{HERE}:{cls}")
    with pytest.raises(ConfigError) as e:
        build("acme")
    message = str(e.value)
    assert "'legacy_erp'" in message and f"{HERE}:{cls}(name, options, base_dir)" in message
    assert expected in message and "ConnectorError" in message


def test_a_connector_error_from_the_class_passes_through_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed(monkeypatch, acme=f"{HERE}:RaisesConnectorError")
    with pytest.raises(ConnectorError) as e:
        build("acme")
    assert str(e.value) == "connector 'legacy_erp' (acme): database: required option is missing"


def test_a_class_without_source_or_sink_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed(monkeypatch, acme=f"{HERE}:NoSink")
    with pytest.raises(ConfigError, match=r"built a NoSink without sink\(\)"):
        build("acme")


def test_a_type_registered_by_two_packages_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed(monkeypatch, filedrop=f"{HERE}:Good | {HERE}:NoSink")
    with pytest.raises(ConfigError) as e:
        build("filedrop")
    message = str(e.value)
    assert "more than one installed package" in message
    assert f"'{HERE}:Good'" in message and f"'{HERE}:NoSink'" in message
