"""The `synchub` command line: parses, calls the hub, renders (rich tables or --json)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from eventsourcing.persistence import PersistenceError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from hub import queries
from hub.config import DEFAULT_CONFIG, EXAMPLE_CONFIG, Settings, load_settings
from hub.engine import Hub, PassReport
from hub.errors import SyncHubError
from hub.mapping import load_mapping
from hub.schemas import canonical_fields
from hub.store.sqlite import SQLiteEventStore
from projections import PROJECTIONS, Projector

app = typer.Typer(
    help="synchub — capture every change, project canonical state, write back minimal deltas.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
exceptions_app = typer.Typer(
    help="Inspect and act on exceptions (the error queue).", no_args_is_help=True
)
events_app = typer.Typer(help="Read raw facts from the event store, decoded.", no_args_is_help=True)
app.add_typer(exceptions_app, name="exceptions")
app.add_typer(events_app, name="events")

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="SYNCHUB_CONFIG", help="Config file.", show_default=True),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DEFAULT = Path(DEFAULT_CONFIG)


def main() -> None:
    try:
        app()
    except SyncHubError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        sys.exit(1)


def _bar(label: str, quiet: bool) -> Progress:
    """A progress bar on stderr (hidden with --json), cleared when done."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    )


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(queries.jsonable(value), indent=2, sort_keys=True) + "\n")


@contextmanager
def _upgrade_bar() -> Iterator[Callable[[int, int], None]]:
    """A progress callback for the rebuild a Projector runs when it finds tables written by an
    older synchub; the bar appears only if that rebuild happens."""
    bar = _bar("rebuilding projections written by an older synchub", quiet=False)
    task: TaskID | None = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("", total=total)
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:  # a bar that never started would still print a newline
            bar.stop()


def _say_upgraded(projector: Projector) -> None:
    if projector.upgraded:
        err.print(f"[dim]rebuilt {', '.join(projector.upgraded)}: written by an older synchub[/]")


def _existing_store(config: Path) -> Settings:
    """The settings, once it is sure the event store they name exists."""
    settings = load_settings(config)
    if not settings.store_path.exists():
        raise SyncHubError(
            f"no event store at {settings.store_path} yet: run `synchub sync --once --config {config}` first"
        )
    return settings


@contextmanager
def _opening_store(settings: Settings, config: Path) -> Iterator[None]:
    """SQLite's own errors when opening the store, said with the setting to fix."""
    try:
        yield
    except (sqlite3.Error, PersistenceError) as e:
        raise SyncHubError(
            f"cannot open the event store {settings.store_path} ({e}): "
            f"check `store.path` in {config}; it must name an SQLite file or a new file's path"
        ) from e


@contextmanager
def _reader(config: Path) -> Iterator[tuple[Settings, SQLiteEventStore, Projector]]:
    """Store + caught-up projections, without starting connectors (for read commands)."""
    settings = _existing_store(config)
    with _opening_store(settings, config):
        store = SQLiteEventStore(str(settings.store_path))
    try:
        with _upgrade_bar() as progress:
            projector = Projector(store, progress=progress)
        _say_upgraded(projector)
        projector.catch_up()
        yield settings, store, projector
    finally:
        store.close()


@contextmanager
def _hub(config: Path, *, existing: bool = False) -> Iterator[Hub]:
    """The hub with its connectors; `existing`: only on a store that exists already."""
    settings = _existing_store(config) if existing else load_settings(config)
    with _opening_store(settings, config), _upgrade_bar() as progress:
        hub = Hub(settings, rebuild_progress=progress)
    _say_upgraded(hub.projector)
    try:
        yield hub
    finally:
        hub.close()


# -- init --------------------------------------------------------------------------------------

EXAMPLE_MAPPING = """\
# Mapping: source objects -> canonical entities -> target objects. See docs/mappings.md.
name: default
entities:
  TimeEntry: {owner: legacy_erp}   # the system of record of time entries
sources:
  - system: legacy_erp
    object: time_entries
    entity: TimeEntry
    id: "$key"
    fields:
      person_id: "person"
      project_id: "project"
      date: "day | date"
      minutes: "minutes | int"
targets: []
"""


@app.command()
def init(
    config: ConfigOpt = DEFAULT,
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Write a commented config file (and an example mapping) to start from."""
    mapping = config.parent / "mapping.yaml"
    for path, text in ((config, EXAMPLE_CONFIG), (mapping, EXAMPLE_MAPPING)):
        if path.exists() and not force:
            err.print(
                f"[yellow]{escape(str(path))} exists; keeping it[/] (use --force to overwrite)"
            )
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.print(f"[green]wrote[/] {escape(str(path))}")
    for folder in ("inbox", "outbox"):
        (config.parent / folder).mkdir(exist_ok=True)
    out.print(
        f"Next: drop export files into {escape(str(config.parent / 'inbox'))} and run "
        f"[bold]synchub sync --once --config {escape(str(config))}[/]"
    )


# -- sync / run --------------------------------------------------------------------------------


def _render_pass(report: PassReport) -> None:
    t = Table(title="sync pass", show_header=True, header_style="bold")
    t.add_column("connector")
    t.add_column("appended", justify="right")
    t.add_column("unchanged", justify="right")
    t.add_column("quarantined", justify="right")
    t.add_column("deleted (reconciled)", justify="right")
    t.add_column("ok")
    for r in report.ingest:
        t.add_row(
            escape(r.connector),
            str(r.appended),
            str(r.skipped),
            str(r.quarantined),
            str(r.deleted_by_reconciliation),
            "[red]failed[/]" if r.errors else "[green]yes[/]",
        )
    out.print(t)
    for error in (e for r in report.ingest for e in r.errors):
        out.print(f"[red]error:[/] {escape(error)}")  # below the table: a message is never cut
    ex = report.executed
    if report.deployed:
        out.print(f"deployed mapping version [bold]{report.deployed}[/]")
    out.print(
        f"projected {report.projected} events · planned {report.planned.planned} writes"
        f" ({report.planned.failed} could not be planned) · applied {ex.applied},"
        f" retrying {ex.waiting}, rejected {ex.rejected}"
    )
    colour = "red" if report.open_exceptions else "green"
    out.print(
        f"[{colour}]open exceptions: {report.open_exceptions}[/]"
        + ("  → `synchub exceptions list`" if report.open_exceptions else "")
    )


def _pass_dict(report: PassReport) -> dict[str, Any]:
    return {
        "deployed_mapping_version": report.deployed,
        "ingest": [vars(r) for r in report.ingest],
        "projected": report.projected,
        "planned": vars(report.planned),
        "executed": vars(report.executed),
        "open_exceptions": report.open_exceptions,
        "errors": report.errors,
    }


@app.command()
def sync(
    config: ConfigOpt = DEFAULT,
    once: Annotated[bool, typer.Option("--once", help="One full pass (the default).")] = True,
    reconcile_force: Annotated[
        bool,
        typer.Option(help="Record deletes found by reconciliation even past the safety ratio."),
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Don't wait for retries within the pass.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """One full pass: capture, project, plan, write. Exit 0: clean; 2: open exceptions; 1: errors."""
    with _hub(config) as hub:
        counts: dict[str, int] = {}
        with _bar("{task.description}", as_json) as bar:
            tasks: dict[str, Any] = {}

            def progress(name: str, n: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(f"capturing {name}", total=None)
                counts[name] = counts.get(name, 0) + n
                bar.update(tasks[name], completed=counts[name])

            report = hub.sync_once(
                progress=progress, reconcile=True, reconcile_force=reconcile_force, wait=not no_wait
            )
    if as_json:
        _print_json(_pass_dict(report))
    else:
        _render_pass(report)
    if report.errors:
        raise typer.Exit(1)
    raise typer.Exit(2 if report.open_exceptions else 0)


@app.command()
def run(config: ConfigOpt = DEFAULT) -> None:
    """Sync continuously (every poll_interval seconds) until Ctrl-C or SIGTERM; then stop cleanly.

    A second Ctrl-C stops at once (exit code 130): every step is atomic with its checkpoint, so
    the next start goes on from the last one that completed."""
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            err.print(f"[yellow]{name} again: stopping now; the next start goes on from here[/]")
            raise KeyboardInterrupt
        err.print(
            f"[yellow]{name}: finishing the current pass, then stopping "
            "(Ctrl-C again to stop now)[/]"
        )
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    try:
        _run(config, stop)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    out.print("stopped cleanly")


def _run(config: Path, stop: threading.Event) -> None:
    with _hub(config) as hub:
        out.print(
            f"synchub running: store {escape(str(hub.settings.store_path))}, "
            f"{len(hub.sources)} source(s), {len(hub.sinks)} sink(s); Ctrl-C to stop"
        )

        def on_pass(r: PassReport) -> None:
            appended = sum(i.appended for i in r.ingest)
            if appended or r.planned.planned or r.executed.attempted or r.errors:
                stamp = dt.datetime.now().strftime("%H:%M:%S")
                out.print(
                    f"{stamp} captured {appended} · planned {r.planned.planned} · applied "
                    f"{r.executed.applied} · open exceptions {r.open_exceptions}"
                    + (f" · [red]{escape('; '.join(r.errors))}[/]" if r.errors else "")
                )

        hub.run(stop, on_pass)


# -- status ------------------------------------------------------------------------------------


@app.command()
def status(config: ConfigOpt = DEFAULT, as_json: JsonOpt = False) -> None:
    """Connectors (checkpoint, lag, last error), projections (position vs head), outbound, exceptions."""
    with _reader(config) as (settings, store, projector):
        data = queries.status(store, projector, list(settings.connectors))
    if as_json:
        _print_json(data)
        return
    out.print(
        f"store [bold]{escape(data['store']['path'])}[/] · head position {data['store']['head']}"
    )
    t = Table(title="connectors", header_style="bold")
    for col in ("connector", "last batch", "lag (s)", "checkpoint"):
        t.add_column(col)
    t.add_column("last error", overflow="fold")  # wrapped, never cut: it says how to fix
    for name, c in data["connectors"].items():
        cp = json.dumps(c["checkpoint"])[:60] if c["checkpoint"] is not None else "—"
        t.add_row(
            escape(name),
            c["last_batch_at"] or "never",
            "—" if c["lag_seconds"] is None else str(c["lag_seconds"]),
            escape(cp),
            f"[red]{escape(c['last_error'])}[/]" if c["last_error"] else "",
        )
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
    with _reader(config) as (_s, store, _p):
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
        _print_json(data)
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
    with _reader(config) as (_s, store, _p):
        cid = queries.canonical_id(entity, natural_id)
        rows = queries.history(store, cid)
    if as_json:
        _print_json(rows)
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
                    f"mapping v{r['mapping_version']} · source time {_short_time(r['source_time'])}"
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
            _short_time(r["source_time"]),
        )
    out.print(t)


def _short_time(iso: str | None) -> str:
    """An ISO UTC time from queries.history, to the second, for a table."""
    return "" if iso is None else iso[:19].replace("T", " ")


# -- rebuild / checksum --------------------------------------------------------------------------


@app.command()
def rebuild(
    projection: Annotated[
        str | None,
        typer.Argument(
            metavar="PROJECTION", help=f"One of: {', '.join(PROJECTIONS)} (default: all)."
        ),
    ] = None,
    config: ConfigOpt = DEFAULT,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Preview a mapping: show what would change; change nothing."
        ),
    ] = False,
    mapping: Annotated[
        Path | None, typer.Option(help="Candidate mapping for --dry-run (default: the config's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay the whole log into fresh tables, then swap them in (no downtime). With --dry-run:
    preview a mapping instead."""
    if mapping is not None and not dry_run:
        raise typer.BadParameter(
            "goes with --dry-run (a preview); to deploy a mapping, point `mapping` in the config"
            " at it and run `synchub sync --once`",
            param_hint="'--mapping'",
        )
    if dry_run and projection is not None:
        raise typer.BadParameter(
            "--dry-run replays every projection: give no PROJECTION", param_hint="'PROJECTION'"
        )
    if dry_run:
        _preview(config, mapping, as_json)
        return
    with _reader(config) as (_s, store, projector):
        names = None if projection is None else [projection]
        if projection is not None and projection not in PROJECTIONS:
            raise typer.BadParameter(
                f"unknown projection {projection!r}; choose from {', '.join(PROJECTIONS)}"
            )
        before = projector.checksums()
        with _bar("rebuilding", as_json) as bar:
            task = bar.add_task("rebuild", total=store.head())
            position = projector.rebuild(
                names, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
        after = projector.checksums()
    chosen = names or list(PROJECTIONS)
    result: dict[str, Any] = {
        "position": position,
        "rebuilt": chosen,
        "unchanged": {n: before[n] == after[n] for n in chosen},
        "checksums": after,
    }
    if as_json:
        _print_json(result)
        return
    for n in chosen:
        mark = "[green]identical[/]" if result["unchanged"][n] else "[yellow]changed[/]"
        out.print(f"{n}: rebuilt to position {position} — {mark}")


def _preview(config: Path, mapping_path: Path | None, as_json: bool) -> None:
    with _reader(config) as (settings, store, projector):
        path = mapping_path or settings.mapping_path
        if path is None:
            raise SyncHubError(
                "no mapping to preview: pass --mapping FILE or set `mapping` in the config"
            )
        current = projector.fold.mapping
        candidate = load_mapping(
            path,
            version=(current.version if current else 0) + 1,
            known_entities=canonical_fields(),
        )
        with _bar("replaying under the candidate", as_json) as bar:
            task = bar.add_task("preview", total=store.head())
            preview = projector.dry_run(
                candidate, progress=lambda d, t: bar.update(task, completed=d, total=t)
            )
    diff, writes = preview.differences, preview.writes
    if as_json:
        _print_json(
            {
                "mapping": str(path),
                "version": candidate.version,
                "differences": diff,
                "writes": writes,
            }
        )
        return
    if not diff:
        out.print(f"{escape(str(path))}: no canonical field would change")
    else:
        t = Table(
            title=f"{escape(str(path))} would change "
            f"{len({d['canonical_id'] for d in diff})} entities",
            header_style="bold",
        )
        for col in ("entity", "field", "now", "would be"):
            t.add_column(col, overflow="fold")
        for d in diff[:PREVIEW_ROWS]:
            t.add_row(
                *(
                    escape(x)
                    for x in (
                        d["canonical_id"],
                        d["field"],
                        json.dumps(d["old"]),
                        json.dumps(d["new"]),
                    )
                )
            )
        out.print(t)
        _more(len(diff), "field changes")
    _render_writes(writes)
    out.print("nothing was deployed: `synchub sync --once` deploys the config's mapping file")


PREVIEW_ROWS = 50
"""Rows of each preview table shown in the terminal (--json has them all)."""


def _more(total: int, what: str) -> None:
    if total > PREVIEW_ROWS:
        out.print(f"[dim]… and {total - PREVIEW_ROWS} more {what}: --json lists them all[/]")


def _render_writes(writes: list[dict[str, Any]]) -> None:
    """The target records a preview would write: counts per target, then the first ones."""
    if not writes:
        out.print("no target record would be written differently")
        return
    counts: dict[str, dict[str, int]] = {}
    for w in writes:
        per = counts.setdefault(f"{w['target']}/{w['object']}", {})
        per[w["op"]] = per.get(w["op"], 0) + 1
    summary = "; ".join(
        f"{escape(t)}: " + ", ".join(f"{n} {op}" for op, n in sorted(ops.items()))
        for t, ops in sorted(counts.items())
    )
    out.print(f"target records it would write: {summary}")
    t = Table(header_style="bold")
    for col in ("target", "entity", "op", "fields (now → would be)"):
        t.add_column(col, overflow="fold")
    for w in writes[:PREVIEW_ROWS]:
        if w["op"] == "refused":
            detail = w["reason"]
        elif w["op"] == "delete":
            detail = "the record is deleted"
        elif w["op"] == "create":
            detail = ", ".join(f"{f}: {json.dumps(new)}" for f, (_, new) in w["fields"].items())
        else:
            detail = ", ".join(
                f"{f}: {json.dumps(old)} → {json.dumps(new)}"
                for f, (old, new) in w["fields"].items()
            )
        t.add_row(
            escape(f"{w['target']}/{w['object']}"),
            escape(w["canonical_id"]),
            w["op"],
            escape(detail),
        )
    out.print(t)
    _more(len(writes), "target records")


@app.command()
def checksum(config: ConfigOpt = DEFAULT, as_json: JsonOpt = False) -> None:
    """A digest of every projection (equal after a rebuild)."""
    with _reader(config) as (_s, _store, projector):
        sums = projector.checksums()
        position = projector.position()
    if as_json:
        _print_json({"position": position, "checksums": sums})
        return
    for name, digest in sums.items():
        out.print(f"{name:12} {digest}")
    out.print(f"(at position {position})")


# -- exceptions ----------------------------------------------------------------------------------

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
    with _reader(config) as (_s, store, _p):
        rows = queries.exceptions(store, status_, kind)
    if as_json:
        _print_json(rows)
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
    with _reader(config) as (_s, store, _p):
        row = queries.exception(store, exception_id)
    if as_json:
        _print_json(row)
        return
    t = Table(show_header=False, title=f"exception {escape(exception_id)}")
    t.add_column("k", style="bold")
    t.add_column("v", overflow="fold")
    for k, v in row.items():
        if v is not None:
            t.add_row(k, escape(json.dumps(v, indent=1) if isinstance(v, dict | list) else str(v)))
    out.print(t)


def _act(exception_id: str, action: str, note: str, config: Path, as_json: bool) -> None:
    with _hub(config, existing=True) as hub:
        row = hub.act_on_exception(exception_id, action, note)
    if as_json:
        _print_json(row)
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


# -- events --------------------------------------------------------------------------------------


@events_app.command("tail")
def events_tail(
    config: ConfigOpt = DEFAULT,
    n: Annotated[int, typer.Option("-n", min=1, help="How many events.")] = 20,
    stream: Annotated[
        str | None, typer.Option(help="Only streams starting with this prefix.")
    ] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The latest events, decoded."""
    with _reader(config) as (_s, store, _p):
        head = store.head()
        picked: list[Any] = []
        upto = head
        while upto > 0 and len(picked) < n:
            page = store.read(max(0, upto - 5000), upto, 5000, [type_] if type_ else ())
            page = [e for e in page if stream is None or e.stream.startswith(stream)]
            picked = page + picked
            upto -= 5000
        events = [queries.event_dict(store, e) for e in picked[-n:]]
    if as_json:
        _print_json(events)
        return
    for e in events:
        _render_event(e, brief=True)


@events_app.command("show")
def events_show(
    position: Annotated[int, typer.Argument(metavar="POSITION", help="Event position.")],
    config: ConfigOpt = DEFAULT,
    as_json: JsonOpt = False,
) -> None:
    """One event with its schema and decoded payload."""
    with _reader(config) as (_s, store, _p):
        found = store.read(position - 1, position, 1)
        if not found:
            raise SyncHubError(f"no event at position {position} (head is {store.head()})")
        e = queries.event_dict(store, found[0])
    if as_json:
        _print_json(e)
        return
    _render_event(e, brief=False)


def _render_event(e: dict[str, Any], *, brief: bool) -> None:
    head = f"[bold]#{e['position']}[/] {e['type']} [cyan]{escape(e['stream'])}[/]@{e['version']}"
    if brief:
        payload = e["payload"]
        summary = payload.get("after") if e["type"] == "SourceChanged" else payload
        out.print(f"{head} {escape(json.dumps(summary, sort_keys=True)[:160])}")
        return
    out.print(head)
    out.print(f"schema {e['schema']} ({e['fingerprint']}) · recorded {e['recorded_at']}")
    out.print_json(json.dumps(e["payload"], sort_keys=True))


if __name__ == "__main__":  # pragma: no cover
    main()
