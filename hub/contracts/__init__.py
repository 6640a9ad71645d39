"""Contract suites: abstract pytest test classes every Source, Sink and event store passes.

- `hub.contracts.source.SourceContract`: the `hub.spi.Source` contract;
- `hub.contracts.sink.SinkContract`: the `hub.spi.Sink` contract;
- `hub.contracts.event_store.EventStoreContract`: the `hub.store.base.EventStore` contract
  (for a storage backend, not a connector).

They are installed with synchub, so a connector kept in a package of its own runs them with no
synchub checkout on its path. They need pytest, which synchub itself does not: install
`synchub[contracts]` (or pytest) into the venv the tests run from. Then subclass a suite in a
test module, name the subclass `Test...`, implement its hooks (the abstract methods and
properties), and run pytest; every contract test runs against your connector:

    # acme-connector/tests/test_acme_contracts.py  (tests/ without __init__.py)
    from pathlib import Path
    from typing import Any

    from hub.contracts.source import SourceContract
    from hub.spi import Source

    class TestAcmeSource(SourceContract):
        object_name = "time_entries"

        def make_source(self, tmp_path: Path) -> Source: ...
        def write(self, object: str, key: str, record: dict[str, Any]) -> str | None: ...
        def remove(self, object: str, key: str) -> None: ...
        def sample(self, i: int) -> dict[str, Any]: ...

    $ python -m pytest tests/                      # or, for test modules inside the package:
    $ python -m pytest --pyargs acme_connector

Each suite's module docstring and hooks say what to implement; docs/connectors.md
("Running the contract suites") is the guide. The classes are not named `Test...`, so pytest
collects nothing from this package itself: only your subclasses run.
"""

from __future__ import annotations

try:
    import pytest
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "hub.contracts needs pytest, which synchub does not install by itself: "
        "`pip install 'synchub[contracts]'` (or `pip install pytest`) in this venv"
    ) from e

# The suites' asserts explain a failure (values compared, not just `AssertionError`) when
# pytest rewrites them, as it does for test modules; these are not test modules, so ask for it
# before they are imported (a no-op outside a pytest run).
pytest.register_assert_rewrite(
    "hub.contracts.source", "hub.contracts.sink", "hub.contracts.event_store"
)
