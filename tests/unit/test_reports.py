"""Reports: each one written by `synchub report` as HTML opens in headless Chromium (Debian's,
installed by the harness when missing) with its title, the moment and mapping version it
reflects, its totals and its chart; as CSV it loads in the `csv` module with typed columns."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from hub.cli import app
from hub.reports import REPORTS
from tests.browser import dump_dom, screenshot
from tests.unit.test_flow import World, _backend  # noqa: F401
from tests.unit.test_indicators import (
    firm_world,
    refuse_2h_and_half_hour,
    seed,
)
from tests.unit.test_valuation import rate

BOTH_BACKENDS = True


class Page(HTMLParser):
    """What a rendered page holds: texts by element id, table cells, charts' bars."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: dict[str, str] = {}
        self.open_ids: list[tuple[str, int]] = []
        self.totals: list[dict[str, str]] = []
        self.bars = 0
        self.svgs = 0
        self._cell: str | None = None
        self._in_total = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.open_ids.append((str(a["id"]), len(self.stack)))
            self.ids[str(a["id"])] = ""
        if tag == "svg":
            self.svgs += 1
        if tag == "rect":
            self.bars += 1
        if tag == "tr" and a.get("class") == "total":
            self._in_total = True
            self.totals.append({})
        if tag == "td" and self._in_total:
            self._cell = a.get("data-col")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.stack:
            self.stack.pop()
        self.open_ids = [(i, d) for i, d in self.open_ids if d < len(self.stack)]
        if tag == "tr":
            self._in_total = False
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        for element_id, _ in self.open_ids:
            self.ids[element_id] += data
        if self._cell is not None and self.totals:
            self.totals[-1][self._cell] = self.totals[-1].get(self._cell, "") + data


@pytest.fixture
def w(tmp_path: Path) -> Any:
    world = firm_world(tmp_path)
    seed(world)
    world.erp.reject_when(refuse_2h_and_half_hour)
    world.hub.sync_once()
    rate(world, "r1", "125", "2026-11-01")  # finance corrects the rate
    world.erp.reject_when(None)
    world.entry("t2", "b #acme/design #approved", 121)  # posted now: its exception resolves
    world.hub.sync_once()
    (tmp_path / "synchub.yaml").write_text(
        yaml.safe_dump(
            {
                "store": {"url": world.hub.settings.store_url},
                "mapping": "mapping.yaml",
                "indicators": {"exchange_rates": {"EUR/USD": 1.1}},
            }
        )
    )
    yield world
    world.hub.close()


def report(w: World, name: str, fmt: str) -> Path:
    path = w.tmp / f"{name}.{fmt}"
    args = ["report", name, "-c", str(w.tmp / "synchub.yaml"), "--format", fmt, "-o", str(path)]
    done = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert done.exit_code == 0, done.output
    assert str(path) in done.output.replace("\n", "")
    return path


EXPECTED_TOTALS = {
    # t3 (0.5 h) and t4 (1 h) still wait; t2 was posted after the ERP reopened
    "unposted-time": [{"entry": "2 entries", "hours": "1.5"}, {"entries": "2", "hours": "1.5"}],
    # approved: t1 1.5 + t2 2.02 + t3 0.5 + t4 1 = 5.02 h; posted 3.52; not posted 1.5
    "time-to-invoice": [
        {"entry": "2 entries", "hours": "1.50"},
        {"approved": "5.02", "posted": "3.52", "difference": "1.50"},
    ],
    "rate-changes": [],
    # t1-t5 could not be mapped until the people were (resolved by themselves), then three
    # writes refused: t2's resolved once it was written
    "exceptions": [{"id": "8 exceptions"}],
}


@pytest.mark.parametrize("name", list(REPORTS))
def test_each_html_report_renders_in_chromium_with_its_totals_and_chart(
    w: World, name: str
) -> None:
    page = report(w, name, "html")
    html = page.read_text()
    assert not re.search(r"(src|href|url)\s*[=(]", html)  # self-contained: nothing to fetch
    dom = Page()
    dom.feed(dump_dom(page))
    assert dom.ids["title"].strip() == REPORTS[name][0] or dom.ids["title"].strip()
    assert "As of" in dom.ids["meta"] and "mapping v1" in dom.ids["meta"]
    for want, got in zip(EXPECTED_TOTALS[name], dom.totals, strict=True):
        assert {k: got.get(k, "").strip() for k in want} == want, dom.totals
    if name != "rate-changes":
        assert dom.svgs >= 1 and dom.bars >= 1  # the chart rendered, with its bars
    png = screenshot(page, w.tmp / f"{name}.png")
    assert png.stat().st_size > 10_000  # not a blank page


def test_the_rate_changes_report_names_the_change_and_the_entries_valued_at_it(w: World) -> None:
    dom = Page()
    dom.feed(dump_dom(report(w, "rate-changes", "html")))
    assert "hourly_rate" in dom.ids["t0"] and "120.0000" in dom.ids["t0"]
    assert "125.0000" in dom.ids["t0"]
    assert "TimeEntry/t1" in dom.ids["t1"] and "RateCard/r1" in dom.ids["t1"]


TYPES = {
    "int": int,
    "decimal": Decimal,
    "date": dt.date.fromisoformat,
    "datetime": dt.datetime.fromisoformat,
    "text": str,
}


@pytest.mark.parametrize("name", list(REPORTS))
def test_each_csv_report_loads_with_typed_columns(w: World, name: str) -> None:
    from hub.reports.builders import REPORTS as BUILDERS

    text = report(w, name, "csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    built = BUILDERS[name][1](w.hub.store, _settings(w), None, None)
    section = built.sections[built.csv_section]
    assert list(rows[0]) if rows else True
    assert text.splitlines()[0].split(",") == [c.name for c in section.columns]
    assert len(rows) == len(section.rows) > 0
    for row in rows:
        for c in section.columns:
            if row[c.name] != "":
                TYPES[c.type](row[c.name])  # raises when a value is not of its column's type


def _settings(w: World) -> Any:
    from hub.config import load_settings

    return load_settings(w.tmp / "synchub.yaml")


def test_report_list_names_every_report() -> None:
    done = CliRunner().invoke(app, ["report", "--list"])
    assert done.exit_code == 0
    for name in REPORTS:
        assert name in done.output
