"""An example downstream consumer (faust-streaming): approved time not yet posted, live, per
project — hours and value — from synchub's Kafka topics alone.

It reads `canonical.time_entry` (each entry's latest state: project, minutes, approved, rate)
and the compacted write outcomes (`synchub.writes`: which entries the ERP has as a timesheet
line), keeps both in changelog-backed faust Tables, and every second writes the per-project
totals to a JSON file (and logs them).

An **example** of stream analytics over the canonical topics, not part of synchub's
guarantees: faust-streaming is pinned exactly and runs with concurrency 1 (see
../shared/research/kafka.md: it can lose an in-flight message after a crash with more), so it
must never sit on a path that must not lose or duplicate (outbound writes do not: they use
`synchub worker outbound`).

    SYNCHUB_KAFKA=127.0.0.1:9092 SYNCHUB_LIVE_OUT=live.json \\
        python -m demo.live_indicators worker --without-web -l warn

Environment: SYNCHUB_KAFKA (bootstrap servers), SYNCHUB_TOPIC_PREFIX (default `canonical.`),
SYNCHUB_WRITES_TOPIC (default `synchub.writes`), SYNCHUB_POSTED_BY (the target record that
means "posted", default `erp/timesheet_lines`), SYNCHUB_LIVE_OUT (the JSON file), SYNCHUB_LIVE_ID
(the faust app id, default `synchub-live-indicators`), SYNCHUB_PARTITIONS (default 6).
"""

from __future__ import annotations

import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import faust

from hub.canonical_schemas import BUILTIN
from hub.publish.topics import TopicSchemas

PREFIX = os.environ.get("SYNCHUB_TOPIC_PREFIX", "canonical.")
WRITES = os.environ.get("SYNCHUB_WRITES_TOPIC", "synchub.writes")
POSTED_BY = os.environ.get("SYNCHUB_POSTED_BY", "erp/timesheet_lines") + "/"
OUT = Path(os.environ.get("SYNCHUB_LIVE_OUT", "live_indicators.json"))
PARTITIONS = int(os.environ.get("SYNCHUB_PARTITIONS", "6"))

app = faust.App(
    os.environ.get("SYNCHUB_LIVE_ID", "synchub-live-indicators"),
    broker="kafka://" + os.environ.get("SYNCHUB_KAFKA", "127.0.0.1:9092"),
    store="memory://",  # the Tables are rebuilt from their changelog topics on start
    topic_partitions=PARTITIONS,
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
    web_enabled=False,
)
schemas = TopicSchemas(BUILTIN)
time_entries = app.topic(PREFIX + "time_entry", key_type=bytes, value_type=bytes)
writes = app.topic(WRITES, key_type=bytes, value_type=bytes)
entries = app.Table("entries", default=None, partitions=PARTITIONS)
"""Canonical id → what the totals need of the entry: project, minutes, approved, rate."""
posted = app.Table("posted", default=None, partitions=PARTITIONS)
"""Canonical id → whether its timesheet line is in the ERP."""


@app.agent(time_entries, concurrency=1)
async def on_time_entry(stream: Any) -> None:
    async for _key, value in stream.items():
        if value is None:
            continue
        change = schemas.decode(value)
        after = change["after"]
        cid = change["canonical_id"]
        if after is None:
            entries.pop(cid, None)
            continue
        rate = after.get("hourly_rate")
        entries[cid] = {
            "project": after.get("project_id") or "(no project)",
            "minutes": after.get("minutes") or 0,
            "approved": bool(after.get("approved")),
            "rate": None if rate is None else str(rate),
        }


@app.agent(writes, concurrency=1)
async def on_write(stream: Any) -> None:
    async for key, value in stream.items():
        name = key.decode()
        if not name.startswith(POSTED_BY) or value is None:
            continue
        outcome = json.loads(value)
        posted[outcome["canonical_id"]] = outcome["status"] == "applied"


def totals() -> dict[str, dict[str, Any]]:
    """Per project: approved hours not posted, and their value where the rate is known."""
    out: dict[str, dict[str, Any]] = {}
    for cid, entry in entries.items():
        if entry is None or not entry["approved"] or posted.get(cid):
            continue
        row = out.setdefault(entry["project"], {"hours": Decimal(0), "value": Decimal(0)})
        hours = Decimal(entry["minutes"]) / 60
        row["hours"] += hours
        if entry["rate"] is not None:
            row["value"] += hours * Decimal(entry["rate"])
    return {
        p: {"hours": str(round(r["hours"], 2)), "value": str(round(r["value"], 2))}
        for p, r in sorted(out.items())
    }


@app.timer(interval=1.0)  # type: ignore[untyped-decorator]
async def publish_totals() -> None:
    data = {"approved_unposted": totals(), "entries": len(entries), "posted": len(posted)}
    fd, tmp = tempfile.mkstemp(dir=OUT.parent, prefix=".live-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, sort_keys=True)
    os.replace(tmp, OUT)


if __name__ == "__main__":
    app.main()
