"""A connector kept outside this repository runs the contract suites from its synchub install.

A throw-away connector package (its own pyproject with a `synchub.connectors` entry point, a
tiny Source and Sink, contract tests inside the package and in its own `tests/` folder) is
built and installed with pip into a target folder of its own, then its tests run with
`python -m pytest --pyargs acme_connector tests` from the package's folder, outside the synchub
checkout, with only that target folder on PYTHONPATH: synchub (hub.contracts included) is
imported from where it is installed in this venv, synchub's own `tests` package is not reachable.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.contracts.sink import SinkContract
from hub.contracts.source import SourceContract

CHECKOUT = Path(__file__).resolve().parents[2]

PYPROJECT = """\
[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "acme-connector"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["synchub"]

[project.optional-dependencies]
test = ["synchub[contracts]"]

[project.entry-points."synchub.connectors"]
acme = "acme_connector:AcmeConnector"

[tool.setuptools.packages.find]
where = ["src"]
"""

CONNECTOR = '''\
"""acme: a change log the system appends to (source), an outbox it imports (sink)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hub.spi import JSON, Batch, Change, ConnectorError, Delta, ObjectSchema, Outcome

ENTRIES = ObjectSchema(
    object="entries",
    key_field="id",
    schema={
        "type": "record",
        "name": "entries",
        "fields": [{"name": "id", "type": "string"}, {"name": "minutes", "type": "long"}],
    },
)


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


class AcmeSource:
    """One JSON line per change: {"key": ..., "record": {...} or null for a delete}."""

    def __init__(self, system: str, log: Path) -> None:
        self.system = system
        self.log = log

    def discover(self) -> list[ObjectSchema]:
        return [ENTRIES]

    def read(self, checkpoint: JSON | None, batch_size: int) -> Iterator[Batch]:
        start = 0 if checkpoint is None else int(checkpoint["line"])
        lines = _lines(self.log)
        for at in range(start, len(lines), batch_size):
            chunk = lines[at : at + batch_size]
            changes = tuple(
                Change(
                    "entries",
                    line["key"],
                    "delete" if line["record"] is None else "upsert",
                    line["record"],
                    position=f"{self.log.name}:{at + n + 1}",
                )
                for n, line in enumerate(chunk)
            )
            yield Batch(changes, {"line": at + len(chunk)})

    def current_keys(self, object: str) -> set[str] | None:
        live: dict[str, bool] = {}
        for line in _lines(self.log):
            live[line["key"]] = line["record"] is not None
        return {key for key, alive in live.items() if alive}

    def close(self) -> None:
        pass


class AcmeSink:
    """Appends each write to an outbox file; an idempotency key found there is not written again."""

    def __init__(self, system: str, outbox: Path) -> None:
        self.system = system
        self.outbox = outbox

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        written = {w["idempotency_key"]: w["target_key"] for w in _lines(self.outbox)}
        outcomes = []
        with self.outbox.open("a", encoding="utf-8") as f:
            for d in deltas:
                if d.idempotency_key not in written:
                    if d.op != "create" and d.target_key is None:
                        reason = f"a {d.op} needs the record's target key"
                        outcomes.append(Outcome(d.idempotency_key, "rejected", reason=reason))
                        continue
                    key = d.target_key or str(len(written) + 1)
                    row = {"idempotency_key": d.idempotency_key, "target_key": key, "op": d.op}
                    f.write(json.dumps({**row, "fields": dict(d.fields)}) + "\\n")
                    written[d.idempotency_key] = key
                key = written[d.idempotency_key]
                outcomes.append(Outcome(d.idempotency_key, "applied", target_key=key))
        return outcomes

    def records(self) -> dict[str, dict[str, Any]]:
        """The state the system holds after importing the outbox."""
        state: dict[str, dict[str, Any]] = {}
        for w in _lines(self.outbox):
            if w["op"] == "delete":
                state.pop(w["target_key"], None)
            else:
                state[w["target_key"]] = {**state.get(w["target_key"], {}), **w["fields"]}
        return state

    def writes(self) -> int:
        return len(_lines(self.outbox))

    def close(self) -> None:
        pass


class AcmeConnector:
    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path) -> None:
        unknown = sorted(set(options) - {"log", "outbox"})
        if unknown:
            raise ConnectorError(f"connector {name!r} (acme): unknown options {unknown}")
        self.name = name
        self.options = dict(options)
        self.base_dir = base_dir

    def source(self) -> AcmeSource | None:
        log = self.options.get("log")
        return None if log is None else AcmeSource(self.name, self.base_dir / log)

    def sink(self) -> AcmeSink | None:
        outbox = self.options.get("outbox")
        return None if outbox is None else AcmeSink(self.name, self.base_dir / outbox)
'''

PACKAGED_TESTS = '''\
"""acme passes synchub's contract suites (shipped in the package: `pytest --pyargs`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acme_connector import AcmeConnector, AcmeSink
from hub.contracts.sink import SinkContract
from hub.contracts.source import SourceContract
from hub.spi import Sink, Source


class TestAcmeSource(SourceContract):
    object_name = "entries"

    def make_source(self, tmp_path: Path) -> Source:
        self.log = tmp_path / "changes.jsonl"
        source = AcmeConnector("acme", {"log": "changes.jsonl"}, tmp_path).source()
        assert source is not None
        return source

    def _append(self, key: str, record: dict[str, Any] | None) -> None:
        with self.log.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "record": record}) + "\\n")

    def write(self, object: str, key: str, record: dict[str, Any]) -> str | None:
        self._append(key, record)
        return None

    def remove(self, object: str, key: str) -> None:
        self._append(key, None)

    def sample(self, i: int) -> dict[str, Any]:
        return {"id": str(i), "minutes": 15 * i}


class TestAcmeSink(SinkContract):
    object_name = "entries"

    def make_sink(self, tmp_path: Path) -> Sink:
        sink = AcmeConnector("acme", {"outbox": "outbox.jsonl"}, tmp_path).sink()
        assert sink is not None
        return sink

    def reopen(self, sink: Sink, tmp_path: Path) -> Sink:
        return self.make_sink(tmp_path)

    def fields(self, i: int) -> dict[str, Any]:
        return {"minutes": 15 * i, "note": f"entry {i}"}

    def read_back(self, sink: Sink, target_key: str) -> dict[str, Any] | None:
        assert isinstance(sink, AcmeSink)
        return sink.records().get(target_key)

    def count(self, sink: Sink) -> int:
        assert isinstance(sink, AcmeSink)
        return sink.writes()
'''

PROJECT_TESTS = '''\
"""In the project's tests/ (no __init__.py): the entry point, and where everything comes from."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import acme_connector
import hub.contracts
from hub.plugins import build_connector, connector_types

CHECKOUT = Path(os.environ["SYNCHUB_CHECKOUT"]).resolve()
TARGET = Path(os.environ["ACME_TARGET"]).resolve()


def test_synchub_builds_the_connector_from_its_entry_point(tmp_path: Path) -> None:
    ep = connector_types()["acme"]
    assert ep.value == "acme_connector:AcmeConnector"
    assert ep.dist is not None and ep.dist.name == "acme-connector"
    connector = build_connector("acme", "acme", {"log": "c.jsonl", "outbox": "o.jsonl"}, tmp_path)
    assert type(connector) is acme_connector.AcmeConnector
    assert connector.source() is not None and connector.sink() is not None


def test_the_connector_is_the_installed_copy_and_the_checkout_is_not_on_the_path() -> None:
    assert Path(acme_connector.__file__).resolve().is_relative_to(TARGET)
    assert Path(hub.contracts.__file__).name == "__init__.py"
    here = Path.cwd().resolve()
    assert here != CHECKOUT and CHECKOUT not in here.parents
    assert not [p for p in sys.path if Path(p or ".").resolve() == CHECKOUT]
    assert importlib.util.find_spec("tests.contracts") is None  # synchub's own tests
'''

FILES = {
    "pyproject.toml": PYPROJECT,
    "src/acme_connector/__init__.py": CONNECTOR,
    "src/acme_connector/tests/__init__.py": "",
    "src/acme_connector/tests/test_acme_contracts.py": PACKAGED_TESTS,
    "tests/test_acme_installed.py": PROJECT_TESTS,
}

RESULT = re.compile(r"^(\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b", re.MULTILINE)


def contract_tests(suite: type) -> set[str]:
    return {name for name in dir(suite) if name.startswith("test_")}


def outcomes(output: str) -> dict[tuple[str, str, str], set[str]]:
    """(module file name, class or "", test name without parameters) -> the statuses that
    pytest -v printed."""
    found: dict[tuple[str, str, str], set[str]] = {}
    for node, status in RESULT.findall(output):
        module, *names = node.split("::")
        cls = names[0] if len(names) == 2 else ""
        key = (Path(module).name, cls, names[-1].split("[")[0])
        found.setdefault(key, set()).add(status)
    return found


@pytest.mark.slow
def test_a_connector_in_its_own_package_runs_the_contract_suites_from_the_installed_synchub(
    tmp_path: Path,
) -> None:
    assert CHECKOUT not in tmp_path.resolve().parents
    project, target = tmp_path / "acme-connector", tmp_path / "site-packages"
    for name, text in FILES.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")

    install = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"),
            *("--no-build-isolation", "--target", str(target), str(project)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (target / "acme_connector" / "tests" / "test_acme_contracts.py").is_file()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    env |= {
        "PYTHONPATH": str(target),
        "SYNCHUB_CHECKOUT": str(CHECKOUT),
        "ACME_TARGET": str(target),
    }
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"),
            *("--pyargs", "acme_connector", "tests"),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    read_back = "test_written_fields_read_back_through_the_source"  # AcmeSink has no read_back
    packaged, project_tests = "test_acme_contracts.py", "test_acme_installed.py"
    expected = {
        (packaged, "TestAcmeSource", name): {"PASSED"} for name in contract_tests(SourceContract)
    }
    expected |= {
        (packaged, "TestAcmeSink", name): {"SKIPPED" if name == read_back else "PASSED"}
        for name in contract_tests(SinkContract)
    }
    expected |= {
        (project_tests, "", name): {"PASSED"}
        for name in (
            "test_synchub_builds_the_connector_from_its_entry_point",
            "test_the_connector_is_the_installed_copy_and_the_checkout_is_not_on_the_path",
        )
    }
    assert outcomes(output) == expected, output
