"""The guide's rule "a connector imports only `hub.spi`" can be kept: everything a connector,
its fakes or its contract tests need from the hub is in hub.spi."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hub.spi

ROOT = Path(__file__).resolve().parents[2]
CONNECTOR_CODE = [
    *sorted((ROOT / "connectors").rglob("*.py")),
    ROOT / "hub" / "testing.py",
    ROOT / "hub" / "contracts" / "source.py",
    ROOT / "hub" / "contracts" / "sink.py",
]
ALLOWED = {"hub.spi", "hub.testing"}


def test_the_spi_exports_the_literal_types_of_changes_deltas_and_outcomes() -> None:
    for name in ("SourceOp", "DeltaOp", "OutcomeStatus"):
        assert name in hub.spi.__all__
        assert getattr(hub.spi, name) is getattr(__import__("hub.types").types, name)


@pytest.mark.parametrize("path", CONNECTOR_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_connector_code_imports_only_hub_spi(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"))
    hub_imports = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hub"
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.split(".")[0] == "hub"
    }
    assert hub_imports <= ALLOWED, f"{path.name} imports {sorted(hub_imports - ALLOWED)}"


def test_same_value_never_calls_an_infinite_number_equal_to_a_finite_one() -> None:
    from hub.spi import same_value

    inf = float("inf")
    assert not same_value(0, inf) and not same_value(inf, 0) and not same_value("1e400", 1.0)
    assert same_value(inf, inf) and same_value(1.5, "1.5") and same_value(2, 2.0)
