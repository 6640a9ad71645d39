"""`synchub rebuild`: replay into fresh tables, or (--dry-run) preview a candidate mapping;
`synchub checksum`: the digests a rebuild leaves equal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hub.canonical_schemas import CanonicalSchemas
from hub.cli.app import DEFAULT, ConfigOpt, JsonOpt, app, reader
from hub.cli.render import PREVIEW_ROWS, more, out, print_json, progress_bar
from hub.errors import SyncHubError
from hub.mapping import load_mapping
from projections import PROJECTIONS


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
    with reader(config) as (_s, store, projector):
        names = None if projection is None else [projection]
        if projection is not None and projection not in PROJECTIONS:
            raise typer.BadParameter(
                f"unknown projection {projection!r}; choose from {', '.join(PROJECTIONS)}"
            )
        before = projector.checksums()
        with progress_bar("rebuilding", as_json) as bar:
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
        print_json(result)
        return
    for n in chosen:
        mark = "[green]identical[/]" if result["unchanged"][n] else "[yellow]changed[/]"
        out.print(f"{n}: rebuilt to position {position} — {mark}")


def _preview(config: Path, mapping_path: Path | None, as_json: bool) -> None:
    with reader(config) as (settings, store, projector):
        path = mapping_path or settings.mapping_path
        if path is None:
            raise SyncHubError(
                "no mapping to preview: pass --mapping FILE or set `mapping` in the config"
            )
        current = projector.fold.mapping
        schemas = CanonicalSchemas.load(settings.canonical_schemas_path)
        candidate = load_mapping(
            path,
            version=(current.version if current else 0) + 1,
            known_entities=schemas.fields(),
        )
        with progress_bar("replaying under the candidate", as_json) as bar:
            task = bar.add_task("preview", total=store.head())
            preview = projector.dry_run(
                candidate,
                progress=lambda d, t: bar.update(task, completed=d, total=t),
                schemas=schemas,
            )
    diff, writes = preview.differences, preview.writes
    if as_json:
        print_json(
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
        more(len(diff), "field changes")
    _render_writes(writes)
    out.print("nothing was deployed: `synchub sync --once` deploys the config's mapping file")


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
    more(len(writes), "target records")


@app.command()
def checksum(config: ConfigOpt = DEFAULT, as_json: JsonOpt = False) -> None:
    """A digest of every projection (equal after a rebuild)."""
    with reader(config) as (_s, _store, projector):
        sums = projector.checksums()
        position = projector.position()
    if as_json:
        print_json({"position": position, "checksums": sums})
        return
    for name, digest in sums.items():
        out.print(f"{name:12} {digest}")
    out.print(f"(at position {position})")
