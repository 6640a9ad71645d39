"""`synchub report NAME`: a report for finance and compliance (hub.reports) as one
self-contained HTML file or as CSV; `synchub report --list` names them."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hub.cli.app import DEFAULT, AsOfOpt, AtOpt, ConfigOpt, app, reader
from hub.cli.render import out, parse_time
from hub.reports import REPORTS, to_csv, to_html


@app.command("report")
def report_command(
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="The report (see --list).")
    ] = None,
    config: ConfigOpt = DEFAULT,
    list_: Annotated[bool, typer.Option("--list", help="Name the reports and stop.")] = False,
    from_: Annotated[
        str | None, typer.Option("--from", help="ISO time: the period's start (period reports).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="ISO time: the period's end.")] = None,
    as_of: AsOfOpt = None,
    at: AtOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", help="html (one self-contained file) or csv.")
    ] = "html",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Where to write it (default ./NAME-DATE.html|csv; - : stdout)."
        ),
    ] = None,
) -> None:
    """Write a report: titled, dated, with the moment and the mapping version it reflects,
    tables with totals and a chart (HTML opens offline), or its record-level table as CSV."""
    if list_ or name is None:
        t = Table(title="Reports", header_style="bold")
        t.add_column("name", no_wrap=True)
        t.add_column("what it shows", overflow="fold")
        for report_name, (what, _) in REPORTS.items():
            t.add_row(report_name, escape(what))
        out.print(t)
        raise typer.Exit(0 if list_ else 2)
    if name not in REPORTS:
        raise typer.BadParameter(f"unknown report {name!r}: one of {', '.join(REPORTS)}")
    if fmt not in ("html", "csv"):
        raise typer.BadParameter("--format is html or csv")
    if as_of is not None and at is not None:
        raise typer.BadParameter("give --as-of or --at, not both")
    period = None
    if from_ is not None or to is not None:
        start = parse_time(from_) if from_ else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        end = parse_time(to) if to else dt.datetime.now(dt.UTC)
        period = (start, end)
    with reader(config) as (settings, store, _p):
        position = store.position_at(parse_time(as_of)) if as_of else at
        report = REPORTS[name][1](store, settings, position, period)
    text = to_html(report) if fmt == "html" else to_csv(report)
    if output is not None and str(output) == "-":
        sys.stdout.write(text)
        return
    path = output or Path(f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M')}.{fmt}")
    path.write_text(text, encoding="utf-8")
    out.print(f"{escape(report.title)}: {escape(str(path.resolve()))}")
