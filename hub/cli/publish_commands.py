"""`synchub publish` (canonical changes → Kafka, once), `synchub subscribe` (read them back,
from Kafka or the embedded store) and `synchub topics` (the topic contract's schemas)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from hub.cli.app import DEFAULT, ConfigOpt, JsonOpt, app, reader
from hub.cli.render import err, out, print_json, progress_bar
from hub.config import load_settings
from hub.errors import SyncHubError
from hub.publish.consumer import CanonicalChange, from_kafka, from_store
from hub.publish.registry import SchemaRegistry, subjects
from hub.publish.service import Publishing
from hub.publish.topics import TopicSchemas, builtin, fingerprint, snake
from hub.queries import entity_name
from projections.mappings import active_deployment


@app.command()
def publish(config: ConfigOpt = DEFAULT, as_json: JsonOpt = False) -> None:
    """Publish the canonical changes not yet published to Kafka (`kafka:` in the config),
    exactly once, then stop. `synchub run` does it after every pass."""
    with reader(config) as (settings, store, _):
        if settings.kafka is None:
            raise SyncHubError(
                f"no `kafka:` section in {config}: add one with bootstrap_servers (see "
                "docs/consumers.md) to publish canonical changes"
            )
        publishing = Publishing(store, settings)
        try:
            with progress_bar("publishing changes", as_json) as bar:
                task = bar.add_task("publishing changes", total=None)
                report = publishing.publish(lambda n: bar.advance(task, n))
        finally:
            publishing.close()
    if as_json:
        print_json(vars(report))
        return
    out.print(
        f"published {report.published} change(s) in {report.transactions} transaction(s)"
        + (f", {report.corrections} correction(s) after a rebuild" if report.corrections else "")
        + f"; the topics are at store position {report.position}"
    )


def _line(ch: CanonicalChange) -> str:
    changed = ", ".join(ch.changed) if ch.changed else "-"
    return f"{ch.position:>8}  {ch.op:<7}  {escape(ch.canonical_id)}  [dim]{escape(changed)}[/]"


@app.command()
def subscribe(
    entity: Annotated[str, typer.Argument(help="A canonical entity, e.g. TimeEntry.")],
    config: ConfigOpt = DEFAULT,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Every change kept, oldest first.")
    ] = False,
    after: Annotated[
        int | None,
        typer.Option("--from", metavar="POSITION", help="The changes after this store position."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep waiting for new changes.")
    ] = True,
    store_only: Annotated[
        bool, typer.Option("--store", help="Read the embedded store even when Kafka is set.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per change and line (JSON Lines).")
    ] = False,
) -> None:
    """Canonical changes of ENTITY as they happen: from the Kafka topics when `kafka:` is
    configured, else from the store itself; the same decoded changes either way. Without
    --from-beginning or --from, only new changes. Ctrl-C stops."""
    with reader(config) as (settings, store, _):
        name = entity_name(entity, store)
        with store.db.transaction(commit=False) as c:
            schemas = TopicSchemas(active_deployment(c)[1])
        start = 0 if from_beginning else after
        if settings.kafka is not None and not store_only:
            registry = settings.kafka_options("schema_registry")
            if registry.get("url"):
                SchemaRegistry(registry).reader(schemas)
            changes = from_kafka(
                settings.kafka,
                schemas,
                [name],
                from_beginning=from_beginning,
                after=after,
                follow=follow,
                options=settings.kafka_options("consumer"),
            )
            where = f"Kafka topic {settings.kafka.topic_prefix}{snake(name)}"
        else:
            changes = from_store(store, schemas, [name], after=start, follow=follow)
            where = f"store {store.location}"
        if not as_json:
            err.print(f"[dim]changes of {name} from {escape(where)}; Ctrl-C to stop[/]")
        try:
            for ch in changes:
                if as_json:
                    sys.stdout.write(json.dumps(ch.to_dict(), sort_keys=True) + "\n")
                    sys.stdout.flush()
                else:
                    out.print(_line(ch))
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


@app.command()
def topics(
    config: ConfigOpt = DEFAULT,
    avsc: Annotated[
        Path | None,
        typer.Option("--avsc", metavar="DIR", help="Write each topic's .avsc into DIR."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The topics synchub publishes (names, schemas, fingerprints, and the registry's subjects
    when one is configured); --avsc writes the schemas a consumer in any language decodes
    with (docs/consumers.md)."""
    settings = load_settings(config)
    schemas = _deployed_schemas(config)
    prefix = settings.kafka.topic_prefix if settings.kafka else "canonical."
    rows: list[dict[str, Any]] = []
    for entity in schemas.entities():
        base = prefix + snake(entity)
        rows.append(
            {
                "entity": entity,
                "change_topic": base,
                "state_topic": base + ".state",
                "change_schema": schemas.change(entity).name,
                "change_fingerprint": fingerprint(schemas.change(entity)).hex(),
                "state_schema": schemas.state(entity).name,
                "state_fingerprint": fingerprint(schemas.state(entity)).hex(),
            }
        )
        if settings.kafka is not None and settings.kafka.schema_registry.get("url"):
            rows[-1]["change_subject"], rows[-1]["state_subject"] = subjects(prefix, entity)
    if avsc is not None:
        avsc.mkdir(parents=True, exist_ok=True)
        for name, schema in schemas.avsc().items():
            (avsc / name).write_text(json.dumps(schema, indent=1) + "\n")
    if as_json:
        print_json(rows)
        return
    for r in rows:
        out.print(f"[bold]{r['change_topic']}[/]  {r['change_schema']}  {r['change_fingerprint']}")
        out.print(f"[bold]{r['state_topic']}[/]  {r['state_schema']}  {r['state_fingerprint']}")
        if "change_subject" in r:
            out.print(f"  registry subjects {r['change_subject']}, {r['state_subject']}")
    if avsc is not None:
        out.print(f"wrote {2 * len(rows)} schema file(s) to {escape(str(avsc))}")


def _deployed_schemas(config: Path) -> TopicSchemas:
    """The schemas of the canonical entities deployed in the store, else the built-in ones."""
    try:
        with reader(config) as (_, store, _p), store.db.transaction(commit=False) as c:
            return TopicSchemas(active_deployment(c)[1])
    except SyncHubError:
        return builtin()
