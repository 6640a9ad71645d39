"""Commands that read the store: `status`, `state`, `history`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hub import queries
from hub.cli.app import DEFAULT, ConfigOpt, JsonOpt, app, reader
from hub.cli.render import checkpoint_lines, out, print_json, short_time

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
        f"store [bold]{escape(data['store']['path'])}[/] · head position {data['store']['head']}"
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
    by_kind = ", ".join(f"{k}: {n}" for k, n in data["exceptions"].items()) or "none"
    out.print(f"open exceptions: [bold]{data['open_exceptions']}[/] ({by_kind})")


# -- state / history -----------------------------------------------------------------------------


def _parse_time(text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-25T14:30:00Z)"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@app.command()
def state(
    entity: Annotated[
        str, typer.Argument(metavar="ENTITY", help="Canonical entity, e.g. TimeEntry.")
    ],
    natural_id: Annotated[str, typer.Argument(metavar="ID", help="Its id, e.g. 42.")],
    config: ConfigOpt = DEFAULT,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO time: the state as it was then.")
    ] = None,
    at: Annotated[
        int | None, typer.Option("--at", help="Event position: the state after it.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The canonical state of one entity, now or as of a time or position. Exit 3: it did not
    exist then."""
    if as_of is not None and at is not None:
        raise typer.BadParameter("give --as-of or --at, not both")
    when_ = _parse_time(as_of) if as_of else None
    with reader(config) as (_s, store, _p):
        cid = queries.canonical_id(entity, natural_id)
        head = store.head()
        if at is not None and not 0 <= at <= head:
            raise typer.BadParameter(
                f"no position {at}: positions run from 0 to {head} (the head); "
                "`synchub events tail` shows the latest",
                param_hint="'--at'",
            )
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
        cid = queries.canonical_id(entity, natural_id)
        rows = queries.history(store, cid)
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
