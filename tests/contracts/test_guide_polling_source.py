"""The polling-source example of docs/connectors.md runs, and what that section says holds.

The example block is taken from the markdown as it is (so the guide cannot rot) and run
against a fake Acme API on `httpx.MockTransport`: it passes the Source contract, keeps a late
commit inside the overlap window and misses one outside it (the documented limit), lists keys
by keyset so a delete while it pages skips no live key (an offset listing does), and turns
the API's errors into ConnectorErrors. The section's schedule of reconciliation is checked on
the Hub itself.
"""

from __future__ import annotations

import functools
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.config import IngestSettings, Settings, StoreSettings
from hub.contracts.source import SourceContract
from hub.engine import Hub
from hub.spi import Batch, ConnectorError, ObjectSchema, Source
from hub.testing import MemorySource, Wired

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"
MARKER = "<!-- the next python block is run by tests/contracts/test_guide_polling_source.py -->"
TOKEN = "acme-token-1234"
URL = "http://acme.test"


@functools.cache
def example() -> types.ModuleType:
    """The guide's example as a module; tracebacks name docs/connectors.md and its lines."""
    lines = GUIDE.read_text("utf-8").splitlines()
    assert lines.count(MARKER) == 1, f"{GUIDE} has no (or more than one) marked example"
    opening = lines.index(MARKER) + 1
    assert lines[opening] == "```python", "the marker must stand right above a python block"
    closing = lines.index("```", opening + 1)
    code = "\n" * (opening + 1) + "\n".join(lines[opening + 1 : closing]) + "\n"
    module = types.ModuleType("synchub_guide_acme_example")
    module.__file__ = str(GUIDE)
    sys.modules[module.__name__] = module  # pydantic resolves the models' annotations there
    exec(compile(code, str(GUIDE), "exec"), module.__dict__)
    return module


class FakeAcme:
    """Acme's API as the example's docstring describes it, over a dict of rows."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.clock = 1_767_225_600_000_000  # epoch microseconds
        self.next: httpx.Response | Exception | None = None  # the next answer, once
        self.between_pages: Callable[[], None] | None = None  # a change while a listing pages

    def put(
        self, key: str, minutes: Any, note: str | None = None, *, stamp: int | None = None
    ) -> int:
        self.clock += 1_000
        when = self.clock if stamp is None else stamp
        self.rows[key] = {"id": key, "minutes": minutes, "note": note, "stamp": when}
        return when

    def delete(self, key: str) -> None:
        del self.rows[key]

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "bad token"})
        if self.next is not None:
            answer, self.next = self.next, None
            if isinstance(answer, Exception):
                raise answer
            return answer
        q = request.url.params
        limit = int(q["limit"])
        if request.url.path == "/entries":
            rows = sorted(self.rows.values(), key=lambda r: (r["stamp"], r["id"]))
            if "since" in q:
                rows = [r for r in rows if r["stamp"] >= int(q["since"])]
            if "after_stamp" in q:
                after = (int(q["after_stamp"]), q["after_id"])
                rows = [r for r in rows if (r["stamp"], r["id"]) > after]
            rows = rows[int(q.get("offset", 0)) :][:limit]
            if self.between_pages is not None:
                self.between_pages()
            return httpx.Response(200, json=rows)
        if request.url.path == "/entry-ids":
            ids = sorted(self.rows)
            if "after" in q:
                ids = [i for i in ids if i > q["after"]]
            ids = ids[int(q.get("offset", 0)) :][:limit]
            if self.between_pages is not None:
                self.between_pages()
            return httpx.Response(200, json=ids)
        return httpx.Response(404)


def acme_source(
    api: FakeAcme, tmp_path: Path, token: str = TOKEN, **options: Any
) -> tuple[Source, Any]:
    connector = example().AcmeConnector(
        "acme",
        {"url": URL, "token": token, **options},
        tmp_path,
        transport=httpx.MockTransport(api.handle),
    )
    source = connector.source()
    assert isinstance(source, Source)
    return source, connector


def read(source: Source, checkpoint: Any = None, batch_size: int = 100) -> tuple[list[str], Any]:
    """The keys read after `checkpoint`, and the checkpoint to go on from."""
    batches: list[Batch] = list(source.read(checkpoint, batch_size))
    keys = [c.key for b in batches for c in b.changes]
    return keys, (batches[-1].checkpoint if batches else checkpoint)


class TestGuideExampleSource(SourceContract):
    object_name = "entries"
    emits_deletes = False  # Acme deletes for good: only current_keys tells

    def make_source(self, tmp_path: Path) -> Source:
        self.api = FakeAcme()
        return acme_source(self.api, tmp_path, page_size=2)[0]  # pages of 2: keyset paging

    def write(self, object: str, key: str, record: dict[str, Any]) -> str | None:
        self.api.put(key, record["minutes"], record["note"])
        return None

    def remove(self, object: str, key: str) -> None:
        self.api.delete(key)

    def sample(self, i: int) -> dict[str, Any]:
        return {"id": str(i), "minutes": 15 * i, "note": f"entry {i}" if i % 2 else None}


def test_the_example_keeps_a_late_commit_inside_the_window_and_misses_one_outside(
    tmp_path: Path,
) -> None:
    api = FakeAcme()
    source, _ = acme_source(api, tmp_path, lag=1, page_size=2)
    api.put("a", 10)
    newest = api.put("b", 20)
    keys, checkpoint = read(source)
    assert keys == ["a", "b"]
    api.put("late", 30, stamp=newest - 500_000)  # committed now, stamped 0.5 s before b
    keys, checkpoint = read(source, checkpoint)
    assert keys == ["late"]
    assert read(source, checkpoint)[0] == []
    api.put("too-late", 40, stamp=newest - 2_000_000)  # 2 s before b: beyond lag=1
    assert read(source, checkpoint)[0] == []
    api.put("too-late", 45)  # its next write brings it back
    assert read(source, checkpoint)[0] == ["too-late"]


def test_the_example_pages_by_keyset_so_a_row_updated_while_paging_is_not_skipped(
    tmp_path: Path,
) -> None:
    """Row 1, read on the first page, is updated before the second: it moves to the end of
    the (stamp, id) order. Paged by offset, the second page would start at row 4 (3 skipped)."""
    api = FakeAcme()
    source, _ = acme_source(api, tmp_path, page_size=2)
    for i in range(1, 7):
        api.put(str(i), i)

    def update_1_once() -> None:
        if api.rows["1"]["minutes"] == 1:
            api.put("1", 100)

    api.between_pages = update_1_once
    changes = [c for b in source.read(None, 100) for c in b.changes]
    assert [c.key for c in changes] == ["1", "2", "3", "4", "5", "6", "1"]
    assert changes[-1].record is not None and changes[-1].record["minutes"] == 100


def test_the_example_lists_keys_by_keyset_so_a_delete_while_paging_skips_no_live_key(
    tmp_path: Path,
) -> None:
    """The guide's warning, shown: with a record deleted after the first page, the offset
    listing misses a live key (reconciliation would delete it); the example's does not."""
    api = FakeAcme()
    source, _ = acme_source(api, tmp_path, page_size=3)
    for i in range(1, 10):
        api.put(f"0{i}", i)

    def delete_02_once() -> None:
        if "02" in api.rows:
            api.delete("02")

    api.between_pages = delete_02_once
    keys = source.current_keys("entries")
    assert "02" not in api.rows
    # every live key; 02 was live when its page was listed: the next reconciliation deletes it
    assert keys == set(api.rows) | {"02"}

    api.put("02", 2)
    api.between_pages = delete_02_once
    offset_keys: set[str] = set()
    with httpx.Client(base_url=URL, transport=httpx.MockTransport(api.handle)) as client:
        for offset in range(0, 100, 3):
            page = client.get(
                "/entry-ids",
                params={"limit": 3, "offset": offset},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ).json()
            offset_keys.update(page)
            if len(page) < 3:
                break
    assert set(api.rows) - offset_keys == {"04"}


def test_the_example_yields_bad_rows_and_raises_connector_errors_for_the_api(
    tmp_path: Path,
) -> None:
    api = FakeAcme()
    source, _ = acme_source(api, tmp_path)
    api.put("1", "ninety")
    (batch,) = source.read(None, 10)
    (change,) = batch.changes
    assert change.record is None and change.key == "1"
    assert change.error is not None and "ninety" in change.error and change.raw
    api.next = httpx.Response(429, headers={"Retry-After": "30"})
    with pytest.raises(
        ConnectorError, match=r"GET /entries: HTTP 429 \(the server asks to wait 30 s\)"
    ):
        list(source.read(None, 10))
    api.next = httpx.ConnectError("connection refused")
    with pytest.raises(ConnectorError, match="GET /entry-ids: ConnectError: connection refused"):
        source.current_keys("entries")
    wrong, _ = acme_source(api, tmp_path, token="not-the-token")
    with pytest.raises(ConnectorError, match="HTTP 401: check the `token` option"):
        list(wrong.read(None, 10))


def test_the_example_validates_its_options_without_echoing_the_token(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError) as e:
        example().AcmeConnector(
            "acme", {"url": URL, "token": 12345678, "page_size": 0, "tokn": "x"}, tmp_path
        )
    message = str(e.value)
    assert "connector 'acme' (acme)" in message
    assert "tokn: unknown option; the options here are: url, token, lag, page_size" in message
    assert "page_size: Input should be greater than or equal to 1 (got 0)" in message
    assert "token: Input should be a valid string" in message
    assert "12345678" not in message


# -- when reconciliation runs (the section "Hard deletes and when reconciliation runs") ---------

ENTRY = ObjectSchema(
    "entries",
    "id",
    {"type": "record", "name": "entries", "fields": [{"name": "id", "type": "string"}]},
)


class Listing(MemorySource):
    """Counts reconciliations (each lists the keys)."""

    def __init__(self) -> None:
        super().__init__("acme", {"entries": ENTRY})
        self.listings = 0

    def current_keys(self, object: str) -> set[str] | None:
        self.listings += 1
        return super().current_keys(object)


def hub_on(tmp_path: Path, source: Listing, **ingest: Any) -> Hub:
    settings = Settings(
        store=StoreSettings(path=str(tmp_path / "hub.db")),
        ingest=IngestSettings(**ingest),
        poll_interval=0.01,
        base_dir=tmp_path,
    )
    return Hub(settings, {"acme": Wired(source, None)})


def run_passes(hub: Hub, n: int) -> None:
    """`synchub run` for n passes."""
    stop = threading.Event()
    passes = 0

    def on_pass(_report: Any) -> None:
        nonlocal passes
        passes += 1
        if passes == n:
            stop.set()

    hub.run(stop, on_pass)


def test_sync_once_reconciles_on_every_pass(tmp_path: Path) -> None:
    source = Listing()
    hub = hub_on(tmp_path, source)
    try:
        for _ in range(3):
            hub.sync_once(reconcile=True)  # what `synchub sync --once` runs
        assert source.listings == 3
    finally:
        hub.close()


@pytest.mark.parametrize(("reconcile_every", "listings"), [(3600.0, 1), (0.0, 3)])
def test_run_reconciles_on_its_first_pass_then_every_reconcile_every(
    tmp_path: Path, reconcile_every: float, listings: int
) -> None:
    source = Listing()
    hub = hub_on(tmp_path, source, reconcile_every=reconcile_every)
    try:
        run_passes(hub, 3)
        assert source.listings == listings
    finally:
        hub.close()
