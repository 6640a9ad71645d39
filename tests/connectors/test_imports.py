"""Connectors know the hub only through `hub.spi`: every module under connectors/ imports from
`hub` only `hub.spi`, never `projections`, and never another connector (the kit,
`connectors._kit`, is shared). `connectors/demo` is not a connector but an application that
drives the hub (it is moving out of connectors/), so it is not checked here."""

from __future__ import annotations

import ast
from pathlib import Path

CONNECTORS = Path(__file__).resolve().parents[2] / "connectors"
NOT_CONNECTORS = {"demo"}


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in `path`, in functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def test_connectors_import_only_hub_spi_and_the_kit() -> None:
    modules = [
        p
        for p in sorted(CONNECTORS.rglob("*.py"))
        if p.relative_to(CONNECTORS).parts[0] not in NOT_CONNECTORS
    ]
    assert len(modules) > 20
    wrong = []
    for path in modules:
        parts = path.relative_to(CONNECTORS).parts
        own = parts[0] if len(parts) > 1 else None
        for line, module in imported(path):
            top, _, rest = module.partition(".")
            if top == "hub" and module != "hub.spi":
                wrong.append(f"{path.relative_to(CONNECTORS)}:{line}: {module} (use hub.spi)")
            elif top == "projections":
                wrong.append(f"{path.relative_to(CONNECTORS)}:{line}: {module}")
            elif top == "connectors" and rest:
                other = rest.split(".")[0]
                if other not in (own, "_kit"):
                    wrong.append(
                        f"{path.relative_to(CONNECTORS)}:{line}: {module} (another connector)"
                    )
    assert wrong == []
