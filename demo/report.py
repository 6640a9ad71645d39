"""What the demo does once its servers run: the firm's loop step by step (deals won in the
CRM become ERP projects and TimeTagger tags, a week of time is posted, invoices in two
currencies and a payment come back to the CRM), a line or two per step, then what the store
holds (captured facts, posted timesheet lines, open exceptions and their fixes), and last
what finance reads: the indicators and the path of an HTML report."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connectors.timetagger.client import TimeTaggerClient
from connectors.timetagger.localserver import TimeTaggerServer
from connectors.tryton.client import TrytonClient
from connectors.tryton.localserver import ADMIN_PASSWORD, ADMIN_USER, TrytonServer
from demo.crm import Crm
from demo.loop import (
    ERP_OBJECTS,
    EU_CONSULTANTS,
    RATES,
    billing_notes,
    book_on,
    companies,
    invoice,
    pay,
    seed_consultants,
    seed_deals,
    seed_rates,
    whole_mapping,
    win_deals,
)
from demo.seed import CONSULTANTS, WEEK, seed_erp, seed_tracker
from hub import indicators, queries, valuation
from hub.cli.indicator_commands import render as render_indicators
from hub.config import load_settings
from hub.engine import Hub, PassReport
from hub.reports import REPORTS, to_html

out = Console()
MARK = "# written by `make demo`\n"


def run_demo(tryton: TrytonServer, tt_server: TimeTaggerServer, config: Path) -> None:
    """The firm's loop, step by step: seed the ERP, the CRM and TimeTagger; write `config`;
    sync; win deals; book a week; invoice one project per currency and collect one; sync
    after each step and say what happened; then idle passes, the full report, and what
    finance reads: the indicators and an HTML report."""
    erp = TrytonClient(tryton.url, "erp", ADMIN_USER, ADMIN_PASSWORD)
    crm = Crm(TrytonClient(tryton.url, "crm", ADMIN_USER, ADMIN_PASSWORD))
    entities = companies(erp)
    with out.status("seeding the ERP, the CRM and the rate cards…"):
        seeded = seed_erp(erp)
        seed_rates(erp, entities)
        seed_consultants(erp, entities["EU"], EU_CONSULTANTS)
        deals = seed_deals(crm)
    out.print(
        f"ERP seeded: {seeded['employees'] + len(EU_CONSULTANTS)} consultants (US and EU), "
        f"{seeded['projects']} projects with {seeded['tasks']} tasks, rate cards "
        + ", ".join(f"{e} {r}/h" for e, r in RATES.items())
        + f"; CRM: {len(deals)} customers with an open deal each"
    )
    people = (*CONSULTANTS, *EU_CONSULTANTS)
    tokens = {person: tt_server.token(person) for person in people}
    write_config(config, tryton, tt_server, tokens, whole_mapping(crm, entities))
    clients = {p: TimeTaggerClient(tt_server.url, t) for p, t in tokens.items()}
    hub = Hub(load_settings(config))
    passes: list[PassReport] = []
    try:
        passes.append(hub.sync_once())
        tags = passes[-1].executed.by_target.get("tracker", {}).get("applied", 0)
        step(1, f"first pass: {tags} #customer/project/task tags published to TimeTagger")

        won = win_deals(crm, deals)
        passes += settle(hub)
        projects = erp.search_read(
            "project.work",
            [("name", "in", won)],
            ["name", "company.rec_name", "party.rec_name", "list_price", "children"],
        )
        step(2, f"deals won in the CRM: {', '.join(won)} → in the ERP:")
        for p in projects:
            out.print(
                f"   {p['name']}: customer {p['party.']['rec_name']}, "
                f"{p['company.']['rec_name']}, {len(p['children'])} tasks, "
                f"{p['list_price']:.2f}/h from the rate card"
            )

        booked = sum(seed_tracker(clients, dt.date.today()).values())
        booked += book_on(clients["alice"], "alice", "Cloud migration", 3, 6)
        booked += book_on(clients["erik"], "erik", "Data platform EU", 3, 7)
        passes += settle(hub)
        posted = len(erp.search("timesheet.line", []))
        refused = sum(1 for x in queries.exceptions(hub.store) if x["object"] == "timesheet_lines")
        step(
            3,
            f"a week of time: {booked} entries booked, {posted} posted to the ERP, {refused} "
            "refused with the reason (flagged #sync-error in TimeTagger; list below)",
        )

        invoices = [invoice(erp, name) for name in ("Cloud migration", "Data platform EU")]
        eu = invoices[-1]
        pay(erp, eu["id"], eu["company"])
        passes += settle(hub)
        said = " and ".join(f"{i['total_amount']:.2f} {i['currency.']['code']}" for i in invoices)
        step(4, f"invoices posted in the ERP: {said}; the EUR one paid → the CRM's notes:")
        for record, text in sorted(billing_notes(crm).items()):
            lines = [ln for ln in text.splitlines()[1:] if ln.strip() and "[synchub:" not in ln]
            out.print(f"   {escape(record)}: " + escape("; ".join(lines)))

        head = hub.store.head()
        idle = [hub.sync_once() for _ in range(2)]
        planned = sum(r.planned.planned for r in idle)
        step(
            5,
            f"two more passes, nothing changed: {planned} writes planned, "
            f"{hub.store.head() - head} events appended (a sync runs forever)",
        )
        worth = valuation.valuations(hub.store)
        totals = " and ".join(
            f"{t['hours']} h = {t['value']} {t['currency']}" for t in worth["totals"]
        )
        step(
            6,
            f"approved time at its project's rate: {totals}; {worth['unvalued']} entries "
            "without a project rate (`synchub valuation` lists them)",
        )
        report(hub, erp, clients, passes + idle)
        out.print()
        step(7, "what finance reads now (`synchub indicators`, also --as-of any past time):")
        render_indicators(indicators.indicators(hub.store, hub.settings.indicators))
        page = config.with_name("time-to-invoice.html")
        page.write_text(to_html(REPORTS["time-to-invoice"][1](hub.store, hub.settings, None, None)))
        out.print(f"   the time-to-invoice report (`synchub report`): {escape(str(page))}")
    finally:
        hub.close()


def step(n: int, text: str) -> None:
    out.print(f"[bold]{n}.[/] {escape(text)}")


def settle(hub: Hub, most: int = 4) -> list[PassReport]:
    """Passes until one plans nothing (what was written is read back by then)."""
    done = []
    for _ in range(most):
        done.append(hub.sync_once())
        if done[-1].planned.planned == 0 and done[-1].executed.waiting == 0:
            break
    return done


def write_config(
    path: Path,
    tryton: TrytonServer,
    tt: TimeTaggerServer,
    tokens: dict[str, str],
    mapping: dict[str, Any],
) -> None:
    """`<demo dir>/synchub.yaml` and the mapping beside it: the demo's secrets are written
    into this local, git-ignored file."""
    path.with_name("mapping.yaml").write_text(MARK + yaml.safe_dump(mapping, sort_keys=False))
    tryton_options = {"url": tryton.url, "user": ADMIN_USER, "password": ADMIN_PASSWORD}
    config: dict[str, Any] = {
        "store": {"path": "./synchub.db"},
        "mapping": "./mapping.yaml",
        "connectors": {
            "crm": {"type": "tryton", "profile": "crm", "database": "crm", **tryton_options}
            | {"lag": 60},
            "erp": {
                "type": "tryton",
                "database": "erp",
                **tryton_options,
                "objects": list(ERP_OBJECTS),
                "lag": 60,
            },
            "tracker": {"type": "timetagger", "url": tt.url, "accounts": tokens, "lag": 10},
        },
        "ingest": {"reconcile_every": 0},
        "indicators": {"exchange_rates": {"EUR/USD": 1.08}},
        "slos": [  # `synchub slo`; add `alerts: {webhook: URL, secret: ...}` to be told
            {"name": "time-before-cutoff", "kind": "time_posted_before_cutoff", "at_risk": "2d"},
            {"name": "deals-in-1h", "kind": "deal_provisioned_within", "within": "1h"},
            {
                "name": "no-stale-exceptions",
                "kind": "exception_age",
                "within": "1d",
                "at_risk": "4h",
            },
        ],
        "outbound": {"max_wait": 10, "base_delay": 0.2},
        "poll_interval": 5,
    }
    path.write_text(MARK + yaml.safe_dump(config, sort_keys=False))


def report(
    hub: Hub, erp: TrytonClient, clients: dict[str, TimeTaggerClient], passes: list[PassReport]
) -> None:
    store = hub.store
    captured: Counter[str] = Counter()
    for e in store.read_all(types=["SourceChanged"]):
        _, system, obj, _key = e.stream.split("/", 3)
        captured[f"{system}/{obj}"] += 1
    t = Table(title="captured (facts in the event store)", header_style="bold")
    t.add_column("system/object")
    t.add_column("facts", justify="right")
    for name, n in sorted(captured.items()):
        t.add_row(name, str(n))
    out.print(t)

    lines = erp.search_read(
        "timesheet.line", [], ["employee.party.code", "date", "duration", "work.rec_name"]
    )
    t = Table(title=f"posted to Tryton: {len(lines)} timesheet lines", header_style="bold")
    for col in ("consultant", "date", "hours", "task"):
        t.add_column(col)
    for line in sorted(lines, key=lambda r: (_code(r), str(r["date"]))):
        hours = line["duration"].total_seconds() / 3600
        work = (line.get("work.") or {}).get("rec_name")
        t.add_row(_code(line), str(line["date"]), f"{hours:g}", str(work))
    out.print(t)

    rows = queries.exceptions(store)
    out.print(f"\n[bold]exceptions: {len(rows)} open[/] — what, and how to fix:")
    for r in rows:
        about = r["canonical_id"] or "/".join(x for x in (r["system"], r["object"], r["key"]) if x)
        out.print(f"[bold]{escape(r['id'])}[/] {r['kind']} · {escape(about)}")
        out.print(f"  what: {escape(r['message'])}", highlight=False)
        out.print(f"  fix:  {escape(r['fix'])}", highlight=False)
    flagged = sum(
        "#sync-error" in rec.get("ds", "") for c in clients.values() for rec in c.updates(0).records
    )
    out.print(f"{flagged} entries carry #sync-error in TimeTagger, so their consultants see them")
    expected = Counter(e.expect.split(":")[0] for e in WEEK)
    out.print(f"expected from the seeded week (besides the deals' time): {dict(expected)}")


def _code(line: dict[str, Any]) -> str:
    """The consultant's handle of a timesheet line read with `employee.party.code`."""
    employee = line.get("employee.") or {}
    return str((employee.get("party.") or {}).get("code"))
