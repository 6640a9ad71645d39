"""`synchub indicators`: the business indicators (hub.indicators), now or as of a time or
position, as tables a finance lead reads at 80 columns, or JSON; `synchub slo`: the
objectives on business deadlines (hub.slo) and their last alerts."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from hub import indicators
from hub.cli.app import DEFAULT, AsOfOpt, AtOpt, ConfigOpt, JsonOpt, app, reader
from hub.cli.render import out, parse_time, print_json
from hub.values import span
from hub.watch import Watch


@app.command("indicators")
def indicators_command(
    config: ConfigOpt = DEFAULT,
    as_of: AsOfOpt = None,
    at: AtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approved time not yet posted (hours, value, oldest, the invoice cut-off), projects
    missing billing rules, deals won but not provisioned, open exceptions per workflow: now,
    or as of a time or position."""
    if as_of is not None and at is not None:
        raise typer.BadParameter("give --as-of or --at, not both")
    when = parse_time(as_of) if as_of else None
    with reader(config) as (settings, store, _p):
        data = indicators.indicators(store, settings.indicators, position=at, as_of=when)
    if as_json:
        print_json(data)
    else:
        render(data)


def render(data: dict[str, Any]) -> None:
    """The indicators as rich tables (also the demo's closing summary)."""
    version = data["mapping_version"]
    out.print(
        f"[bold]Indicators[/] as of {escape(data['as_of'][:19])} (position {data['position']}"
        f"{f', mapping v{version}' if version is not None else ''})"
    )
    _unposted(data["unposted_time"])
    missing = data["projects_missing_billing"]
    if missing:
        t = Table(
            title=f"{_count(len(missing), 'project')} missing billing rules", header_style="bold"
        )
        t.add_column("project", overflow="fold")
        t.add_column("what is missing", overflow="fold")
        for r in missing:
            t.add_row(escape(_name(r["project_id"], r["project"])), escape("; ".join(r["reasons"])))
        out.print(t)
    else:
        out.print("Every open project has its billing rules.")
    deals = data["deals_not_provisioned"]
    if deals:
        t = Table(title=f"{_count(len(deals), 'deal')} won, not provisioned", header_style="bold")
        t.add_column("deal", overflow="fold")
        t.add_column("account", overflow="fold")
        t.add_column("won", justify="right", no_wrap=True)
        for r in deals:
            t.add_row(
                escape(_name(r["opportunity_id"], r["name"])),
                escape(r["account"] or r["account_id"] or ""),
                f"{age(r['won_age_s'])} ago" if r["won_age_s"] is not None else "?",
            )
        out.print(t)
    else:
        out.print("Every won deal is provisioned.")
    delayed = data["invoices_delayed"]
    if delayed:
        t = Table(
            title=f"{_count(len(delayed), 'invoice')} delayed by sync errors", header_style="bold"
        )
        t.add_column("invoice", overflow="fold")
        t.add_column("amount", justify="right", no_wrap=True)
        t.add_column("held by", overflow="fold")
        for r in delayed:
            t.add_row(
                escape(f"{r['number'] or r['invoice_id']} ({r['status']})"),
                escape(f"{r['total'] or ''} {r['currency'] or ''}"),
                escape(f"{r['workflow']}: {r['exception'][:80]}"),
            )
        out.print(t)
    latency = data["sync_latency"]
    if latency:
        t = Table(title="Sync latency (source change → applied)", header_style="bold")
        t.add_column("workflow", overflow="fold")
        t.add_column("writes", justify="right")
        for col in ("p50", "p95", "max"):
            t.add_column(col, justify="right", no_wrap=True)
        for r in latency:
            t.add_row(
                escape(r["workflow"]),
                str(r["writes"]),
                *(age(round(r[k])) for k in ("p50_s", "p95_s", "max_s")),
            )
        out.print(t)
    excs = data["open_exceptions"]
    if excs:
        t = Table(title="Open exceptions", header_style="bold")
        t.add_column("workflow", overflow="fold")
        t.add_column("kind")
        t.add_column("open", justify="right")
        t.add_column("oldest", justify="right", no_wrap=True)
        for r in excs:
            t.add_row(escape(r["workflow"]), r["kind"], str(r["count"]), age(r["oldest_age_s"]))
        out.print(t)
    else:
        out.print("No open exceptions.")


def _unposted(u: dict[str, Any]) -> None:
    where = ", ".join(u["targets"]) or "the ERP (no TimeEntry target rule)"
    if not u["rows"]:
        out.print(f"No approved time waits to be posted to {escape(where)}.")
        return
    t = Table(
        title=f"Approved time not posted to {escape(where)}: {u['entries']} entries, "
        f"{u['hours']} h",
        header_style="bold",
    )
    t.add_column("project", overflow="fold")
    t.add_column("entity", overflow="fold")
    t.add_column("n", justify="right")
    t.add_column("hours", justify="right")
    t.add_column("value", justify="right")
    t.add_column("oldest", justify="right", no_wrap=True)
    t.add_column("cut-off in", justify="right", no_wrap=True)
    for r in u["rows"]:
        values = "\n".join(f"{v['value']} {v['currency']}" for v in r["values"]) or "—"
        if r["converted"] is not None and [v["currency"] for v in r["values"]] != [r["currency"]]:
            values += f"\n= {r['converted']} {r['currency']}"
        elif r["missing_rates"]:
            values += f"\n(no rate {', '.join(r['missing_rates'])})"
        left = r["cutoff_in_s"]
        t.add_row(
            escape(_name(r["project_id"], r["project"])),
            escape(r["legal_entity_id"].split("/", 1)[-1]),
            str(r["entries"]),
            r["hours"],
            escape(values),
            age(r["oldest_age_s"]),
            f"[red]{age(left)}[/]" if left < 2 * 86400 else age(left),
        )
    out.print(t)
    totals = "; ".join(f"{v['value']} {v['currency']}" for v in u["values"])
    if totals:
        out.print(f"  worth {escape(totals)}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _name(cid: str, name: Any) -> str:
    """An entity's name, or its id when it has none."""
    return str(name) if name else cid


def age(seconds: int | None) -> str:
    """A duration the way people say it (hub.values.span); ? when unknown."""
    return "?" if seconds is None else span(seconds)


@app.command("slo")
def slo_command(config: ConfigOpt = DEFAULT, as_json: JsonOpt = False) -> None:
    """Each service-level objective (`slos:` in the config) now: met, at risk or breached,
    why, the records that put it at risk, the time left, and its last alert. Exit 2: one is
    breached."""
    with reader(config) as (settings, store, _p):
        if not settings.slos:
            out.print(
                "[yellow]no objectives configured[/]: add `slos:` to the config "
                "(docs/operations.md, Objectives and alerts)"
            )
            raise typer.Exit(1)
        watch = Watch(store, settings)
        try:
            _data, states = watch.objectives()
            assert watch.alerts is not None
            last = watch.alerts.last_states([s["name"] for s in states])
        finally:
            watch.close()
    for s in states:
        alert = last.get(s["name"])
        s["last_alert"] = (
            None
            if alert is None
            else {
                "state": alert["state"],
                "at": alert["at"].isoformat(),
                "delivery": alert["delivery"],
            }
        )
    if as_json:
        print_json(states)
    else:
        _print_states(states, webhook=settings.alerts.webhook is not None)
    raise typer.Exit(2 if any(s["state"] == "breached" for s in states) else 0)


_STYLE = {"met": "green", "at_risk": "yellow", "breached": "bold red"}


def _print_states(states: list[dict[str, Any]], *, webhook: bool = True) -> None:
    t = Table(title="Objectives", header_style="bold")
    t.add_column("objective", overflow="fold")
    t.add_column("state", no_wrap=True)
    t.add_column("left", justify="right", no_wrap=True)
    t.add_column("why", overflow="fold")
    for s in states:
        left = s["time_left_s"]
        t.add_row(
            escape(s["name"]),
            f"[{_STYLE[s['state']]}]{s['state'].replace('_', ' ')}[/]",
            "" if left is None else age(left),
            escape(s["reason"] or "—"),
        )
    out.print(t)
    for s in states:
        if s["records"]:
            shown = ", ".join(s["records"][:5])
            more = f" and {len(s['records']) - 5} more" if len(s["records"]) > 5 else ""
            out.print(f"  {escape(s['name'])}: {escape(shown)}{more}")
        if s["last_alert"]:
            a = s["last_alert"]
            out.print(
                f"  {escape(s['name'])}: last alert {a['state']} at {a['at'][:19]}"
                f" ({a['delivery'] or ('not sent yet' if webhook else 'logged; no webhook')})"
            )
