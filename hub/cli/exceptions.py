"""`synchub exceptions list|show|retry|resolve`: the error queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hub import queries
from hub.cli.app import DEFAULT, ConfigOpt, JsonOpt, exceptions_app, open_hub, reader
from hub.cli.render import out, print_json
from hub.exception_actions import record_exception_action

STATUSES = ("open", "retrying", "resolved", "ignored", "all")
KINDS = ("quarantine", "mapping", "plan", "write")


@exceptions_app.command("list")
def exceptions_list(
    config: ConfigOpt = DEFAULT,
    status_: Annotated[
        str,
        typer.Option("--status", help=f"{', '.join(STATUSES)} (open includes retrying)."),
    ] = "open",
    kind: Annotated[str | None, typer.Option(help=f"{', '.join(KINDS)}.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Exceptions with what went wrong and how to fix it."""
    for option, value, choices in (("--status", status_, STATUSES), ("--kind", kind, KINDS)):
        if value is not None and value not in choices:
            raise typer.BadParameter(
                f"{value!r} is not one of {', '.join(choices)}", param_hint=f"'{option}'"
            )
    with reader(config) as (_s, store, _p):
        rows = queries.exceptions(store, status_, kind)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(f"no {status_ if status_ != 'all' else ''} exceptions".replace("  ", " "))
        return
    if out.width < 120:  # six columns would cut ids and messages into slivers: one block each
        out.print(f"[bold]{len(rows)} exception(s)[/]")
        for r in rows:
            about = "/".join(str(x) for x in (r["system"], r["object"], r["key"]) if x)
            out.print(
                f"\n[bold]{escape(r['id'])}[/] · {r['kind']} · {r['status']} · {escape(about)}"
            )
            out.print(f"  what: {escape(str(r['message']))}")
            out.print(f"  fix:  {escape(str(r['fix']))}")
        return
    t = Table(header_style="bold", title=f"{len(rows)} exception(s)")
    t.add_column("id", no_wrap=True)
    for col in ("kind", "status", "about", "what", "fix"):
        t.add_column(col, overflow="fold")
    for r in rows:
        about = "/".join(str(x) for x in (r["system"], r["object"], r["key"]) if x)
        t.add_row(
            *(
                escape(str(x))
                for x in (r["id"], r["kind"], r["status"], about, r["message"], r["fix"])
            )
        )
    out.print(t)


@exceptions_app.command("show")
def exceptions_show(
    exception_id: Annotated[str, typer.Argument(metavar="ID")],
    config: ConfigOpt = DEFAULT,
    as_json: JsonOpt = False,
) -> None:
    """Everything known about one exception."""
    with reader(config) as (_s, store, _p):
        row = queries.exception(store, exception_id)
    if as_json:
        print_json(row)
        return
    t = Table(show_header=False, title=f"exception {escape(exception_id)}")
    t.add_column("k", style="bold")
    t.add_column("v", overflow="fold")
    for k, v in row.items():
        if v is not None:
            t.add_row(k, escape(json.dumps(v, indent=1) if isinstance(v, dict | list) else str(v)))
    out.print(t)


def _act(exception_id: str, action: str, note: str, config: Path, as_json: bool) -> None:
    """`retry` runs the failed step again, so it opens the hub with its connectors;
    `resolve` and `ignore` only record the decision and need no connector (nor its secret)."""
    if action == "retry":
        with open_hub(config, existing=True) as hub:
            row = hub.act_on_exception(exception_id, action, note)
    else:
        with reader(config) as (_, store, projector):
            row = record_exception_action(store, projector, exception_id, action, note)
    if as_json:
        print_json(row)
        return
    out.print(
        f"{escape(exception_id)}: {action} recorded → status [bold]{row['status']}[/]"
        + (f" ({escape(row['resolution'])})" if row.get("resolution") else "")
    )


@exceptions_app.command("retry")
def exceptions_retry(
    exception_id: Annotated[str, typer.Argument(metavar="ID")],
    config: ConfigOpt = DEFAULT,
    note: Annotated[str, typer.Option(help="Note for the audit trail.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Try the failed step again (re-ingest, re-map or re-send)."""
    _act(exception_id, "retry", note, config, as_json)


@exceptions_app.command("resolve")
def exceptions_resolve(
    exception_id: Annotated[str, typer.Argument(metavar="ID")],
    config: ConfigOpt = DEFAULT,
    note: Annotated[str, typer.Option(help="Why it is resolved.")] = "",
    ignore: Annotated[
        bool, typer.Option("--ignore", help="Accept as is instead of fixed.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Mark an exception resolved (fixed outside synchub) or --ignore it."""
    _act(exception_id, "ignore" if ignore else "resolve", note, config, as_json)
