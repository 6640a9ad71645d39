"""Idle-pass benchmark: with N timesheet lines posted to a real Tryton, what does a pass cost
when nothing changed anywhere? It must append no event, plan and write nothing, and take the
same time whatever N is (a sync runs forever; a pass that grows with what it posted once does
not).

For each N (default 100 and 1,000): a fresh copy of the golden database, seeded as
bench/tryton_sink.py does; a Hub over a MemorySource of N approved entries and the real Tryton
connector as both source (timesheet_lines, captured back) and sink. One pass posts the N lines
and reads them back (not timed). After the source's overlap window (`lag`, 2 s here) has
passed, `--passes` idle passes are timed, each checked to append no event: as `run` makes
them between reconciliations (`reconcile=False`; the ratio is theirs) and as `sync --once`
does (with a reconciliation, which lists every key of the source: O(N) by design).

The ratio compares the idle pass at the largest N with the smallest one (the fixed baseline of
the same run): 1.0 means independent of N.

    python bench/idle_pass.py [--sizes 100 1000] [--passes 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _common import emit, peak_rss_mb
from rich.console import Console
from rich.table import Table
from tryton_sink import ENTRY, entries, mapping, seed

from connectors.tryton import TrytonConnector
from connectors.tryton.client import TrytonClient
from connectors.tryton.localserver import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    TrytonServer,
    ensure_installed,
    golden_database,
)
from hub.config import OutboundSettings, Settings, StoreSettings
from hub.engine import Hub
from hub.testing import MemorySource, Wired

ROOT = Path(__file__).resolve().parents[1]
LAG = 2.0


def build_hub(tmp: Path, n: int, options: dict[str, Any], employee: int, work: int) -> Hub:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "mapping.yaml").write_text(yaml.safe_dump(mapping(employee, work)))
    tracker = MemorySource("tracker", {"entries": ENTRY})
    for r in entries(n):
        tracker.put("entries", r["id"], r)
    erp = TrytonConnector("erp", {**options, "objects": ["timesheet_lines"], "lag": LAG}, tmp)
    settings = Settings(
        store=StoreSettings(path=str(tmp / "hub.db")),
        mapping="mapping.yaml",
        base_dir=tmp,
        outbound=OutboundSettings(rate_limit_per_s=10_000, batch_size=100, max_wait=0),
    )
    return Hub(settings, {"tracker": Wired(source=tracker), "erp": erp})


def measure(server: TrytonServer, golden: Path, tmp: Path, n: int, passes: int) -> dict[str, Any]:
    name = f"idle{n}"
    server.add_database(name, golden)
    client = TrytonClient(server.url, name, ADMIN_USER, ADMIN_PASSWORD)
    employee, work = seed(client)
    options = {"url": server.url, "database": name, "user": ADMIN_USER, "password": ADMIN_PASSWORD}
    hub = build_hub(tmp / name, n, options, employee, work)
    try:
        start = time.perf_counter()
        posting = hub.sync_once()
        post_s = time.perf_counter() - start
        lines = len(client.search("timesheet.line", []))
        time.sleep(LAG + 1)  # out of the overlap window: what a long-running sync sees
        seconds: dict[bool, list[float]] = {False: [], True: []}
        appended, planned, written = [], [], []
        for _ in range(passes):
            for reconcile in (False, True):  # as `run` between reconciliations; as `sync --once`
                head = hub.store.head()
                start = time.perf_counter()
                report = hub.sync_once(reconcile=reconcile)
                seconds[reconcile].append(time.perf_counter() - start)
                appended.append(hub.store.head() - head)
                planned.append(report.planned.planned)
                written.append(report.executed.attempted)
    finally:
        hub.close()
        client.close()
    return {
        "n": n,
        "lines": lines,
        "posted": posting.executed.applied,
        "post_s": post_s,
        "idle_s": statistics.median(seconds[False]),
        "idle_max_s": max(seconds[False]),
        "reconciling_s": statistics.median(seconds[True]),
        "appended": sum(appended),
        "planned": sum(planned),
        "written": sum(written),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="posted lines (N)")
    p.add_argument("--passes", type=int, default=5, help="idle passes timed per N")
    args = p.parse_args()
    console = Console(width=100)
    python = ensure_installed(ROOT)
    golden = golden_database(ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="synchub-bench-idle-"))
    server = TrytonServer(python, tmp / "db")
    results = []
    try:
        server.start()
        for n in sorted(args.sizes):
            results.append(measure(server, golden, tmp, n, args.passes))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    table = Table(title=f"Idle passes after posting N lines to Tryton ({args.passes} each)")
    cols = ("N", "posted", "posting s", "idle ms", "max ms", "+reconcile ms", "events", "writes")
    for col in cols:
        table.add_column(col, justify="right")
    problems = []
    for r in results:
        table.add_row(
            f"{r['n']:,}",
            f"{r['posted']:,}",
            f"{r['post_s']:.2f}",
            f"{r['idle_s'] * 1000:.1f}",
            f"{r['idle_max_s'] * 1000:.1f}",
            f"{r['reconciling_s'] * 1000:.1f}",
            str(r["appended"]),
            str(r["written"]),
        )
        if r["posted"] != r["n"] or r["lines"] != r["n"]:
            problems.append(f"N={r['n']}: posted {r['posted']}, Tryton holds {r['lines']} lines")
        if r["appended"] or r["planned"] or r["written"]:
            problems.append(
                f"N={r['n']}: idle passes appended {r['appended']} events, planned "
                f"{r['planned']}, wrote {r['written']}"
            )
    console.print(table)
    for problem in problems:
        console.print(f"[red]FAILED[/red] {problem}")
    small, large = results[0], results[-1]
    emit(
        {
            "name": "idle_pass",
            "n": large["n"],
            "baseline_n": small["n"],
            "per_s": round(1 / large["idle_s"], 2),
            "baseline_per_s": round(1 / small["idle_s"], 2),
            "ratio": round(small["idle_s"] / large["idle_s"], 3),
            "idle_ms": {str(r["n"]): round(r["idle_s"] * 1000, 1) for r in results},
            "reconciling_idle_ms": {
                str(r["n"]): round(r["reconciling_s"] * 1000, 1) for r in results
            },
            "events_appended": {str(r["n"]): r["appended"] for r in results},
            "verified": not problems,
            "peak_rss_mb": peak_rss_mb(),
        }
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
