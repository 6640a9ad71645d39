"""Codec and mapping micro-benchmark: µs per payload decoded and per record mapped.

Decoding, over N realistic payloads (the time entries of _common, as ingest writes them):
  envelope   a SourceChanged envelope (hub.schemas.envelope_schema of _common's record)
  canonical  a canonical TimeEntry (latest version: date, timestamp, nullable strings)
each by `fastavro.schemaless_reader` (the baseline), `Codec.decode` (generated, fastavro's
values) and `Codec.decode_raw` (generated, timestamps as integer microseconds).

Mapping, over the same N records: `InboundRule.apply` of _common.MAPPING_SPEC compiled
(hub.mapping.compiled) against the generic pipeline interpreter (`apply_interpreted`).

The items are cut in chunks of 500; each round times every variant on every chunk, interleaved
(chunk by chunk), and a variant's time is the sum over chunks of its best time on that chunk in
R rounds: on a shared machine a burst of other work spoils a chunk, not the whole figure. The
JSON line's `per_s`/`baseline_per_s`/`ratio` are the envelope decode (generated vs fastavro).

    python bench/codec.py --events 20000
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
from collections.abc import Callable
from typing import Any

import fastavro
from _common import MAPPING_SPEC, OBJECT_SCHEMA, emit, parser, peak_rss_mb, time_entry_batches
from rich.console import Console
from rich.table import Table

from hub.avro import HEADER_LEN, Codec, Schema
from hub.mapping import Mapping
from hub.schemas import canonical_entities, canonical_schema, envelope_schema

CHUNK = 500


class NoLinks:
    """The Lookup of a store without links: the bench mapping needs none."""

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        return None

    def target_key(self, system: str, canonical_id: str) -> str | None:
        return None

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        return None


def samples(n: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """N source records and their envelopes (as hub.ingest writes them)."""
    records, envelopes = [], []
    for batch in time_entry_batches(n, 5000, 0.1, seed):
        for change in batch.changes:
            record = dict(change.record or {})
            records.append(record)
            envelopes.append(
                {
                    "digest": hashlib.blake2b(repr(record).encode(), digest_size=8).digest(),
                    "op": "create",
                    "key": change.key,
                    "position": change.position,
                    "source_time": change.source_time,
                    "captured_at": dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
                    + dt.timedelta(microseconds=len(envelopes) * 997),
                    "connector": "bench",
                    "after": record,
                }
            )
    return records, envelopes


def canonical_rows(mapping: Mapping, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rule = mapping.inbound("tracker", "time_entries")
    assert rule is not None
    rows = []
    for i, record in enumerate(records):
        mapped = rule.apply(record["id"], record, NoLinks())
        row: dict[str, Any] = {
            "approved_by": None,
            "approved_at": None,
            **mapped.fields,
            "id": mapped.natural_id,
        }
        if i % 3 == 0:
            row["approved_by"] = row["person_id"]
            row["approved_at"] = dt.datetime(2026, 4, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i)
        rows.append(row)
    return rows


def timed_loop(fn: Callable[[Any], Any], items: list[Any]) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    records, envelopes = samples(args.events, args.seed)
    mapping = Mapping.from_dict(MAPPING_SPEC, known_entities=canonical_entities())
    rule = mapping.inbound("tracker", "time_entries")
    assert rule is not None
    env_schema = envelope_schema("tracker", OBJECT_SCHEMA.object, OBJECT_SCHEMA.schema)
    canon_schema = canonical_schema("TimeEntry")
    codec = Codec()
    payloads: dict[str, tuple[Schema, list[bytes]]] = {
        "envelope": (env_schema, [codec.encode(env_schema, e) for e in envelopes]),
        "canonical": (
            canon_schema,
            [codec.encode(canon_schema, r) for r in canonical_rows(mapping, records)],
        ),
    }
    for schema, _ in payloads.values():
        codec.add(schema)
    lookup = NoLinks()

    def fastavro_of(schema: Schema) -> Callable[[bytes], Any]:
        parsed = schema.parsed
        return lambda p: fastavro.schemaless_reader(io.BytesIO(p[HEADER_LEN:]), parsed, None)

    variants: dict[str, tuple[Callable[[Any], Any], list[Any]]] = {}
    for kind, (schema, items) in payloads.items():
        variants[f"{kind}: fastavro schemaless_reader"] = (fastavro_of(schema), items)
        variants[f"{kind}: Codec.decode (generated)"] = (codec.decode, items)
        variants[f"{kind}: Codec.decode_raw (generated)"] = (codec.decode_raw, items)
    pairs = [(r["id"], r) for r in records]
    variants["mapping: interpreted"] = (
        lambda kr: rule.apply_interpreted(kr[0], kr[1], lookup),
        pairs,
    )
    variants["mapping: compiled"] = (lambda kr: rule.apply(kr[0], kr[1], lookup), pairs)

    chunks = range(0, len(records), CHUNK)
    fastest = {name: [float("inf")] * len(chunks) for name in variants}
    for _ in range(args.repeat):
        for c, start in enumerate(chunks):
            for name, (fn, items) in variants.items():
                seconds = timed_loop(fn, items[start : start + CHUNK])
                fastest[name][c] = min(fastest[name][c], seconds)
    best = {name: sum(times) for name, times in fastest.items()}

    n = len(records)
    table = Table(title=f"µs per item, best of {args.repeat} interleaved rounds of {n:,}")
    for col in ("variant", "µs/item", "vs baseline"):
        table.add_column(col, justify="right" if col != "variant" else "left")
    results: dict[str, float] = {}
    for name, seconds in best.items():
        group = name.split(":")[0]
        base_name = (
            "mapping: interpreted" if group == "mapping" else f"{group}: fastavro schemaless_reader"
        )
        us = seconds / n * 1e6
        results[name] = round(us, 3)
        table.add_row(name, f"{us:.2f}", f"{best[base_name] / seconds:.2f}x")
    Console().print(table)
    base, generated = (
        best["envelope: fastavro schemaless_reader"],
        best["envelope: Codec.decode (generated)"],
    )
    emit(
        {
            "name": "codec",
            "n": n,
            "repeat": args.repeat,
            "per_s": round(n / generated, 1),
            "baseline_per_s": round(n / base, 1),
            "ratio": round(base / generated, 3),
            "us_per_item": results,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


if __name__ == "__main__":
    main()
