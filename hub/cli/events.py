"""`synchub events tail|show`: raw facts from the event store, decoded."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from hub import queries
from hub.cli.app import DEFAULT, ConfigOpt, JsonOpt, events_app, reader
from hub.cli.render import out, print_json
from hub.errors import SyncHubError


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
    with reader(config) as (_s, store, _p):
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
        print_json(events)
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
    with reader(config) as (_s, store, _p):
        found = store.read(position - 1, position, 1)
        if not found:
            raise SyncHubError(f"no event at position {position} (head is {store.head()})")
        e = queries.event_dict(store, found[0])
    if as_json:
        print_json(e)
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
