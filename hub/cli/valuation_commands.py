"""`synchub valuation`: what entities are worth by the mapping's `valuations` rules (a time
entry's hours at the rate in force on its day), now or as of a time or position; and the
valuation lines `history` adds for a valued entity or a rate."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hub import valuation
from hub.cli.app import DEFAULT, AsOfOpt, AtOpt, ConfigOpt, JsonOpt, app, reader
from hub.cli.render import out, parse_time, print_json
from hub.errors import SyncHubError
from hub.store.base import EventStore


@app.command("valuation")
def valuation_command(
    entity: Annotated[
        str | None,
        typer.Argument(metavar="[ENTITY]", help="The valued entity (default: the only one)."),
    ] = None,
    config: ConfigOpt = DEFAULT,
    rate: Annotated[
        str | None,
        typer.Option("--rate", metavar="ENTITY/ID", help="Only those valued at this rate."),
    ] = None,
    as_of: AsOfOpt = None,
    at: AtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each valued entity with its hours, rate and value, and totals per currency, now or as
    of a time or position (under the mapping in force then). Entities without a rate in
    force are listed with the reason. Exit 2: some have no value."""
    if as_of is not None and at is not None:
        raise typer.BadParameter("give --as-of or --at, not both")
    when_ = parse_time(as_of) if as_of else None
    with reader(config) as (_s, store, _p):
        try:
            data = valuation.valuations(store, entity, position=at, as_of=when_, rate_id=rate)
        except SyncHubError as exc:
            out.print(f"[red]{escape(str(exc))}[/]")
            raise typer.Exit(1) from None
    if as_json:
        print_json(data)
    else:
        _print(data)
    raise typer.Exit(2 if data["unvalued"] else 0)


def _print(data: dict[str, Any]) -> None:
    when = f"as of {data['as_of']}" if data["as_of"] else f"at position {data['position']}"
    only = f" at {data['rate_id']}" if data["rate_id"] else ""
    t = Table(
        title=f"{len(data['entries'])} {escape(data['entity'])} valued{escape(only)} ({when}, "
        f"mapping v{data['mapping_version']})",
        header_style="bold",
    )
    t.add_column("entity", overflow="fold")
    t.add_column("date", no_wrap=True)
    t.add_column("hours", justify="right")
    t.add_column("rate", overflow="fold")
    t.add_column("value", justify="right", no_wrap=True)
    for r in data["entries"]:
        t.add_row(
            escape(r["canonical_id"]),
            escape(str(r["date"] or "")),
            escape(r["hours"] or ""),
            escape(_rate(r)),
            escape(f"{r['value']} {r['currency']}" if r["value"] else "—"),
        )
    for total in data["totals"]:
        t.add_row(
            f"[bold]total {escape(total['currency'])}[/]",
            f"{total['entries']} {'entry' if total['entries'] == 1 else 'entries'}",
            f"[bold]{escape(total['hours'])}[/]",
            "",
            f"[bold]{escape(total['value'])} {escape(total['currency'])}[/]",
        )
    out.print(t)
    if data["unvalued"]:
        out.print(
            f"[yellow]{data['unvalued']} without a value[/]: add the missing rate in the "
            "system of record (the rate column says why), then sync"
        )


def _rate(r: dict[str, Any]) -> str:
    if r["hourly_rate"] is None:
        return r["problem"] or ""
    return f"{r['hourly_rate']} {r['currency']}/h ({r['rate_id']})"


def history_lines(store: EventStore, cid: str) -> list[str]:
    """What `history` adds for `cid`: a valued entity's value now, or the entities a rate
    values now (rich markup). Empty when the mapping values neither."""
    entity = cid.split("/", 1)[0]
    rates = valuation.rate_entities(store)
    try:
        if entity in rates:
            data = valuation.valuations(store, rates[entity], rate_id=cid)
            lines = [f"[bold]valued at {escape(cid)} now[/]: {len(data['entries'])}"]
            lines += [
                f"  {escape(r['canonical_id'])} · {escape(str(r['date'] or ''))} · "
                f"{escape(r['hours'] or '')} h → {escape(r['value'] or '—')} "
                f"{escape(r['currency'] or '')}"
                for r in data["entries"]
            ]
            return lines
        if entity in rates.values():
            data = valuation.valuations(store, entity, canonical_id=cid)
            return [
                f"[bold]value now[/]: {escape(r['hours'] or '')} h at {escape(_rate(r))}"
                f" = {escape(r['value'] or '—')}"
                for r in data["entries"]
            ]
    except SyncHubError:
        return []
    return []
