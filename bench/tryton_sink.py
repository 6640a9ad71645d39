"""Tryton sink benchmark: synchub posting N approved time entries to a real Tryton, against the
same TrytonClient creating the same timesheet lines directly, in the same run.

One local Tryton server (temp dir, SQLite) serves two fresh copies of the golden database per
repetition, each seeded the same way (an employee, a customer, a project with a task; not
timed). Then, timed:
  baseline   TrytonClient.create("timesheet.line", [values]) N times, one line per call
             (employee, timesheet work, date, duration, description), logged in beforehand
  synchub    Hub.sync_once() end to end: capture N approved entries from a MemorySource,
             project them to canonical TimeEntry, plan `erp/timesheet_lines` creates, execute
             them with the real TrytonSink (marker search, create, read-back per line) and
             record the outcomes. Hub construction and the sink's login are not timed.
Both databases must end with exactly N lines holding the same durations and descriptions
(the sink's idempotency marker aside); otherwise the script exits with status 1.
`--breakdown` also times every RPC method on both clients (wraps the clients' `_post`).

    python bench/tryton_sink.py --entries 200 [--repeat 3] [--profile FILE] [--breakdown]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from _common import emit, peak_rss_mb, profiled, rate
from rich.console import Console
from rich.table import Table

from connectors.tryton import TrytonConnector
from connectors.tryton.client import TrytonClient
from connectors.tryton.localserver import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    TrytonServer,
    ensure_installed,
    golden_database,
)
from connectors.tryton.sink import split_marker
from hub.config import OutboundSettings, Settings, StoreSettings
from hub.engine import Hub, PassReport
from hub.testing import MemorySource, Wired
from hub.types import ObjectSchema

ROOT = Path(__file__).resolve().parents[1]
LINE = "timesheet.line"
DAY = dt.date.today()
ENTRY = ObjectSchema(
    "entries",
    "id",
    {
        "type": "record",
        "name": "entry",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "minutes", "type": "long"},
            {"name": "day", "type": "string"},
            {"name": "text", "type": "string"},
            {"name": "approved", "type": "boolean"},
        ],
    },
)


def entries(n: int) -> list[dict[str, Any]]:
    """N approved time entries (15 min .. 8 h in quarter hours, distinct descriptions)."""
    return [
        {
            "id": f"te-{i:06d}",
            "minutes": 15 * (1 + (i * 7) % 32),
            "day": DAY.isoformat(),
            "text": f"bench entry {i}: build the thing",
            "approved": True,
        }
        for i in range(n)
    ]


def mapping(employee: int, work: int) -> dict[str, Any]:
    """Entries → TimeEntry → erp/timesheet_lines; employee and work are literals."""
    return {
        "name": "bench",
        "entities": {"TimeEntry": {"owner": "tracker"}},
        "sources": [
            {
                "system": "tracker",
                "object": "entries",
                "entity": "TimeEntry",
                "id": "$key",
                "fields": {
                    "minutes": "minutes",
                    "date": "day | date",
                    "description": "text",
                    "approved": "approved",
                },
            }
        ],
        "targets": [
            {
                "system": "erp",
                "object": "timesheet_lines",
                "entity": "TimeEntry",
                "when": "approved",
                "fields": {
                    "employee": f"'{employee}'",
                    "work": f"'{work}'",
                    "date": "date",
                    "hours": "minutes | div 60 | round 2",
                    "description": "description",
                },
            }
        ],
    }


# -- Tryton side ---------------------------------------------------------------------------


def seed(c: TrytonClient) -> tuple[int, int]:
    """An employee, a customer and a timesheet-invoiced project with one task, over RPC, as
    tests/connectors/tryton/conftest.py's Erp does: (employee id, the task's timesheet work)."""
    company = c.context["company"]
    (product,) = c.search("product.product", [("code", "=", "CONSULT-H")])
    (person,) = c.create("party.party", [{"name": "Jane Consultant"}])
    (employee,) = c.create("company.employee", [{"party": person, "company": company}])
    (customer,) = c.create(
        "party.party",
        [
            {
                "name": "Customer Ltd",
                "addresses": [("create", [{"street": "1 Main St", "city": "Springfield"}])],
            }
        ],
    )
    task = {
        "name": "Build",
        "type": "task",
        "company": company,
        "product": product,
        "list_price": Decimal(120),
        "timesheet_available": True,
        "effort_duration": dt.timedelta(hours=8),
    }
    (project,) = c.create(
        "project.work",
        [
            {
                "name": "Web",
                "type": "project",
                "company": company,
                "party": customer,
                "project_invoice_method": "timesheet",
                "product": product,
                "list_price": Decimal(150),
                "timesheet_available": True,
                "children": [("create", [task])],
            }
        ],
    )
    (task_id,) = c.read("project.work", [project], ["children"])[0]["children"]
    (work,) = c.read("project.work", [task_id], ["timesheet_works"])[0]["timesheet_works"]
    return employee, int(work)


def lines(c: TrytonClient) -> list[tuple[float, str | None]]:
    """Every timesheet line as (hours, description without the synchub marker), sorted."""
    rows = c.search_read(LINE, [], ["duration", "description"])
    out = [
        (round(r["duration"].total_seconds() / 3600, 4), split_marker(r["description"])[0])
        for r in rows
    ]
    return sorted(out, key=lambda t: (t[0], t[1] or ""))


class RpcTimes:
    """Wall time and count per RPC method, by wrapping one client's `_post` (--breakdown)."""

    def __init__(self, client: TrytonClient) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.count: Counter[str] = Counter()
        post: Callable[[str, list[Any]], Any] = client._post

        def timed(method: str, params: list[Any]) -> Any:
            start = time.perf_counter()
            try:
                return post(method, params)
            finally:
                self.seconds[method] += time.perf_counter() - start
                self.count[method] += 1

        client._post = timed  # type: ignore[method-assign]


# -- the two paths -------------------------------------------------------------------------


def run_baseline(c: TrytonClient, records: list[dict[str, Any]], employee: int, work: int) -> float:
    """Seconds to create the lines one at a time with the plain client."""
    values = [
        {
            "employee": employee,
            "work": work,
            "date": dt.date.fromisoformat(r["day"]),
            "duration": dt.timedelta(hours=round(r["minutes"] / 60, 2)),
            "description": r["text"],
        }
        for r in records
    ]
    start = time.perf_counter()
    for v in values:
        c.create(LINE, [v])
    return time.perf_counter() - start


def build_hub(
    tmp: Path, records: list[dict[str, Any]], options: Mapping[str, Any], employee: int, work: int
) -> tuple[Hub, TrytonClient]:
    """A Hub over a MemorySource holding the records and the real TrytonSink (logged in)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "mapping.yaml").write_text(yaml.safe_dump(mapping(employee, work)))
    source = MemorySource("tracker", {"entries": ENTRY})
    for r in records:
        source.put("entries", r["id"], r)
    sink = TrytonConnector("erp", options, tmp).sink()
    sink.client.context  # log in now: the baseline's login is not timed either  # noqa: B018
    settings = Settings(
        store=StoreSettings(path=str(tmp / "hub.db")),
        mapping="mapping.yaml",
        base_dir=tmp,
        outbound=OutboundSettings(rate_limit_per_s=10_000, batch_size=100, max_wait=0),
    )
    hub = Hub(settings, {"tracker": Wired(source=source), "erp": Wired(sink=sink)})
    return hub, sink.client


def run_synchub(hub: Hub, profile: str | None) -> tuple[float, PassReport]:
    with profiled(profile):
        start = time.perf_counter()
        report = hub.sync_once()
        seconds = time.perf_counter() - start
    return seconds, report


# -- main ----------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=200, help="approved time entries (N)")
    p.add_argument("--repeat", type=int, default=1, help="best of R runs, fresh databases each")
    p.add_argument("--profile", metavar="FILE", help="cProfile the last synchub pass into FILE")
    p.add_argument("--breakdown", action="store_true", help="time every RPC method")
    args = p.parse_args()
    n = args.entries
    console = Console(width=100)
    records = entries(n)

    python = ensure_installed(ROOT)
    golden = golden_database(ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="synchub-bench-tryton-"))
    server = TrytonServer(python, tmp / "db")
    base_s: list[float] = []
    hub_s: list[float] = []
    counts: dict[str, int] = {}
    calls: dict[str, Counter[str]] = {}
    times: dict[str, RpcTimes] = {}
    rpc_s: list[float] = []
    problems: list[str] = []
    try:
        server.start()
        for rep in range(args.repeat):
            clients: dict[str, TrytonClient] = {}
            ids: dict[str, tuple[int, int]] = {}
            for which in ("baseline", "synchub"):
                name = f"{which[0]}{rep}"
                server.add_database(name, golden)
                clients[which] = TrytonClient(server.url, name, ADMIN_USER, ADMIN_PASSWORD)
                ids[which] = seed(clients[which])
            options = {
                "url": server.url,
                "database": f"s{rep}",
                "user": ADMIN_USER,
                "password": ADMIN_PASSWORD,
            }
            hub, sink_client = build_hub(tmp / f"hub{rep}", records, options, *ids["synchub"])
            base = clients["baseline"]
            base.calls.clear()
            if args.breakdown:
                times = {"baseline": RpcTimes(base), "synchub": RpcTimes(sink_client)}
            sink_client.calls.clear()
            profile = args.profile if rep == args.repeat - 1 else None
            try:
                # alternate the order so neither path always runs on a warmer server
                if rep % 2 == 0:
                    base_s.append(run_baseline(base, records, *ids["baseline"]))
                    seconds, report = run_synchub(hub, profile)
                else:
                    seconds, report = run_synchub(hub, profile)
                    base_s.append(run_baseline(base, records, *ids["baseline"]))
                hub_s.append(seconds)
                calls = {"baseline": Counter(base.calls), "synchub": Counter(sink_client.calls)}
            finally:
                hub.close()
            verify = TrytonClient(server.url, f"s{rep}", ADMIN_USER, ADMIN_PASSWORD)
            got = {"baseline": lines(base), "synchub": lines(verify)}
            verify.close()
            base.close()
            counts = {k: len(v) for k, v in got.items()}
            for key, t in times.items():
                detail = ", ".join(
                    f"{m.removeprefix('model.')} {t.count[m]}x {t.seconds[m]:.2f}s"
                    for m in sorted(t.seconds, key=t.seconds.__getitem__, reverse=True)
                )
                console.print(f"run {rep + 1} RPC time, {key}: {detail}")
            if "synchub" in times:
                rpc_s.append(sum(times["synchub"].seconds.values()))
            console.print(
                f"run {rep + 1}: baseline {base_s[-1]:.2f}s, synchub {hub_s[-1]:.2f}s; lines "
                f"baseline={counts['baseline']} synchub={counts['synchub']} (want {n}); "
                f"applied={report.executed.applied} exceptions={report.open_exceptions}"
            )
            if counts["baseline"] != n or counts["synchub"] != n:
                problems.append(f"run {rep + 1}: line counts {counts}, want {n} each")
            elif got["baseline"] != got["synchub"]:
                problems.append(f"run {rep + 1}: the two databases hold different lines")
            if report.executed.applied != n or report.open_exceptions or report.errors:
                problems.append(
                    f"run {rep + 1}: applied {report.executed.applied}, exceptions "
                    f"{report.open_exceptions}, errors {report.errors}"
                )
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    b, h = min(base_s), min(hub_s)
    table = Table(title=f"Tryton timesheet lines, N={n}, best of {args.repeat}")
    for col in ("path", "seconds", "lines/s", "ms/line", "RPC calls/line", "vs baseline"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for label, s, key in (
        ("synchub sync_once", h, "synchub"),
        ("TrytonClient.create", b, "baseline"),
    ):
        per_line = sum(calls.get(key, Counter()).values()) / n
        table.add_row(
            label,
            f"{s:.2f}",
            f"{n / s:,.1f}",
            f"{s / n * 1000:.1f}",
            f"{per_line:.2f}",
            f"{b / s:.2f}x",
        )
    console.print(table)
    if rpc_s:
        own = hub_s[-1] - rpc_s[-1]
        console.print(
            f"last run: synchub {hub_s[-1]:.2f}s = sink RPCs {rpc_s[-1]:.2f}s + hub code outside "
            f"the RPCs {own:.2f}s ({own / n * 1000:.1f} ms/entry)"
        )
    for problem in problems:
        console.print(f"[red]FAILED[/red] {problem}")

    emit(
        {
            "name": "tryton_sink",
            "n": n,
            "repeat": args.repeat,
            "per_s": rate(n, h),
            "baseline_per_s": rate(n, b),
            "ratio": round(b / h, 3),
            "seconds": round(h, 3),
            "baseline_seconds": round(b, 3),
            "rpc_calls": {k: dict(v) for k, v in calls.items()},
            "lines": counts,
            "runs": {
                "baseline_s": [round(s, 3) for s in base_s],
                "synchub_s": [round(s, 3) for s in hub_s],
            },
            "verified": not problems,
            "peak_rss_mb": peak_rss_mb(),
            **({"hub_own_seconds": round(hub_s[-1] - rpc_s[-1], 3)} if rpc_s else {}),
        }
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
