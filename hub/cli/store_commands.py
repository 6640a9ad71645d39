"""Commands that read the store: `status`, `state`, `history`."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hub import queries
from hub.cli.app import DEFAULT, AsOfOpt, AtOpt, ConfigOpt, JsonOpt, app, reader
from hub.cli.render import checkpoint_lines, out, parse_time, print_json, short_time
from hub.cli.valuation_commands import history_lines

# -- status ------------------------------------------------------------------------------------


@app.command()
def status(config: ConfigOpt = DEFAULT, as_json: JsonOpt = False) -> None:
    """Connectors (last batch, lag, last error, checkpoint in short), projections (position vs
    head), outbound, exceptions. --json: everything, checkpoints whole."""
    with reader(config) as (settings, store, projector):
        data = queries.status(store, projector, list(settings.connectors))
    if as_json:
        print_json(data)
        return
    out.print(
        f"store [bold]{escape(data['store']['location'])}[/] · head position {data['store']['head']}"
    )
    t = Table(title="connectors", header_style="bold")
    t.add_column("connector")
    t.add_column("last batch (UTC)", no_wrap=True)
    t.add_column("lag (s)", justify="right")
    t.add_column("last error", overflow="fold")  # wrapped, never cut: it says how to fix
    for name, c in data["connectors"].items():
        t.add_row(
            escape(name),
            short_time(c["last_batch_at"]) or "never",
            "—" if c["lag_seconds"] is None else str(c["lag_seconds"]),
            f"[red]{escape(c['last_error'])}[/]" if c["last_error"] else "",
        )
    out.print(t)
    t = Table(title="checkpoints (in short; --json has them whole)", header_style="bold")
    t.add_column("connector")
    t.add_column("checkpoint", overflow="fold")
    for name, c in data["connectors"].items():
        t.add_row(escape(name), escape("\n".join(checkpoint_lines(c["checkpoint"]))))
    out.print(t)
    t = Table(title="projections", header_style="bold")
    t.add_column("projection")
    t.add_column("position", justify="right")
    t.add_column("behind head", justify="right")
    for name, p in data["projections"].items():
        t.add_row(name, str(p["position"]), str(p["behind"]))
    out.print(t)
    t = Table(title="outbound", header_style="bold")
    for col in ("target", *queries.OUTBOUND_STATUSES):
        t.add_column(col, justify="right" if col != "target" else "left")
    for target, counts in data["outbound"].items():
        t.add_row(escape(target), *(str(counts[k]) for k in queries.OUTBOUND_STATUSES))
    out.print(t)
    if data["leases"]:
        t = Table(title="who works what (hub processes)", header_style="bold")
        t.add_column("work")
        t.add_column("held by", overflow="fold")
        t.add_column("until (UTC)", no_wrap=True)
        for lease in data["leases"]:
            t.add_row(
                escape(lease["work"]),
                escape(lease["holder"]),
                "[yellow]expired[/]" if lease["expired"] else short_time(lease["until"]),
            )
        out.print(t)
    by_kind = ", ".join(f"{k}: {n}" for k, n in data["exceptions"].items()) or "none"
    out.print(f"open exceptions: [bold]{data['open_exceptions']}[/] ({by_kind})")


# -- state / history -----------------------------------------------------------------------------


@app.command()
def state(
    entity: Annotated[
        str, typer.Argument(metavar="ENTITY", help="Canonical entity, e.g. TimeEntry.")
    ],
    natural_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="Its id, e.g. 42 (or --all).")
    ] = None,
    config: ConfigOpt = DEFAULT,
    every: Annotated[
        bool, typer.Option("--all", help="Every entity of the type (instead of one ID).")
    ] = False,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            metavar="FIELD=VALUE",
            help="With --all: only those whose field has this value (repeatable; text as is, "
            "others as JSON: true, 60).",
        ),
    ] = None,
    as_of: AsOfOpt = None,
    at: AtOpt = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="With --all: CSV, one row per entity, for scripts.")
    ] = False,
) -> None:
    """The canonical state of one entity, or of every entity of a type (--all), now or as of
    a time or position. Exit 3: the entity did not exist then."""
    if as_of is not None and at is not None:
        raise typer.BadParameter("give --as-of or --at, not both")
    if (natural_id is None) == (not every):
        raise typer.BadParameter("give an ID, or --all for every entity of the type")
    if (where or as_csv) and not every:
        raise typer.BadParameter("--where and --csv go with --all")
    when_ = parse_time(as_of) if as_of else None
    with reader(config) as (_s, store, _p):
        head = store.head()
        if at is not None and not 0 <= at <= head:
            raise typer.BadParameter(
                f"no position {at}: positions run from 0 to {head} (the head); "
                "`synchub events tail` shows the latest",
                param_hint="'--at'",
            )
        if every:
            listing = queries.states(
                store, entity, where=_conditions(where or []), position=at, as_of=when_
            )
            return _print_states(listing, as_json=as_json, as_csv=as_csv)
        assert natural_id is not None
        cid = queries.canonical_id(entity, natural_id, store)
        data = queries.state(store, cid, position=at, as_of=when_)
    if as_json:
        print_json(data)
        raise typer.Exit(0 if data["exists"] else 3)
    when = f"as of {data['as_of']}" if data["as_of"] else f"at position {data['position']}"
    if not data["exists"]:
        out.print(f"{escape(cid)} did not exist {when}")
        raise typer.Exit(3)
    t = Table(title=f"{escape(cid)} ({when})", header_style="bold")
    t.add_column("field")
    t.add_column("value")
    for k, v in sorted(data["fields"].items()):
        t.add_row(escape(k), escape(json.dumps(v)))
    out.print(t)
    if data["links"]:
        out.print(
            "links: "
            + ", ".join(
                escape(f"{link['system']}/{link['object']}/{link['key']} ({link['role']})")
                for link in data["links"]
            )
        )


def _conditions(where: list[str]) -> dict[str, str]:
    out_: dict[str, str] = {}
    for condition in where:
        field, eq, value = condition.partition("=")
        if not eq or not field:
            raise typer.BadParameter(
                f"{condition!r} is not FIELD=VALUE (e.g. --where approved=true)",
                param_hint="'--where'",
            )
        out_[field.strip()] = value
    return out_


def _print_states(listing: dict[str, Any], *, as_json: bool, as_csv: bool) -> None:
    """--all output: JSON (everything), CSV (canonical_id, natural_id, then every field
    seen, values as --where compares them), or a table with the count."""
    if as_json:
        print_json(listing)
        return
    rows = listing["entities"]
    fields = sorted({f for r in rows for f in r["fields"]})
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["canonical_id", "natural_id", *fields])
        for r in rows:
            values = [_cell(r["fields"].get(f)) for f in fields]
            writer.writerow([r["canonical_id"], r["canonical_id"].split("/", 1)[1], *values])
        return
    when = f"as of {listing['as_of']}" if listing["as_of"] else f"at position {listing['position']}"
    conditions = " ".join(f"{k}={v}" for k, v in listing["where"].items())
    t = Table(
        title=f"{listing['count']} {escape(listing['entity'])} ({when})"
        + (f" where {escape(conditions)}" if conditions else ""),
        header_style="bold",
    )
    t.add_column("id")
    for f in fields:
        t.add_column(escape(f), overflow="fold")
    for r in rows:
        t.add_row(
            escape(r["canonical_id"].split("/", 1)[1]),
            *(escape(_cell(r["fields"].get(f))) for f in fields),
        )
    out.print(t)


def _cell(value: Any) -> str:
    """A field value in a cell: text as is, nothing for a missing one, else JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


@app.command()
def history(
    entity: Annotated[
        str, typer.Argument(metavar="ENTITY", help="Canonical entity, e.g. Project.")
    ],
    natural_id: Annotated[str, typer.Argument(metavar="ID", help="Its id, e.g. 42.")],
    config: ConfigOpt = DEFAULT,
    as_json: JsonOpt = False,
) -> None:
    """Every field change of one entity, with lineage (system, record, position, mapping).
    Exit 3: no history."""
    with reader(config) as (_s, store, _p):
        cid = queries.canonical_id(entity, natural_id, store)
        rows = queries.history(store, cid)
        valued = [] if as_json else history_lines(store, cid)
    if as_json:
        print_json(rows)
        raise typer.Exit(0 if rows else 3)
    if not rows:
        out.print(f"no history for {escape(cid)}")
        raise typer.Exit(3)
    if out.width < 120:  # eight columns would not fit: one block per change
        out.print(f"[bold]history of {escape(cid)}[/]")
        last = None
        for r in rows:
            if (r["position"], r["op"]) != last:
                last = (r["position"], r["op"])
                source = f"{r['system']}/{r['object']}/{r['source_key']}"
                out.print(
                    f"\n[bold]#{r['position']}[/] {r['op']} · {escape(source)} · "
                    f"mapping v{r['mapping_version']} · source time {short_time(r['source_time'])}"
                )
            old = "" if r["old"] is None else f"{json.dumps(r['old'])} → "
            out.print(f"  {escape(r['field'])}: {escape(old + json.dumps(r['new']))}")
        _print_lines(valued)
        return
    t = Table(title=f"history of {escape(cid)}", header_style="bold")
    for col in ("pos", "op", "field", "mapping"):
        t.add_column(col, no_wrap=True)
    for col in ("old", "new", "source", "source time (UTC)"):
        t.add_column(col, overflow="fold")  # wrapped, never cut: an audit shows whole values
    for r in rows:
        t.add_row(
            str(r["position"]),
            r["op"],
            escape(r["field"]),
            f"v{r['mapping_version']}",
            escape(json.dumps(r["old"])) if r["old"] is not None else "",
            escape(json.dumps(r["new"])) if r["new"] is not None else "",
            escape(f"{r['system']}/{r['object']}/{r['source_key']}"),
            short_time(r["source_time"]),
        )
    out.print(t)
    _print_lines(valued)


def _print_lines(lines: list[str]) -> None:
    if lines:
        out.print()
    for line in lines:
        out.print(line)
