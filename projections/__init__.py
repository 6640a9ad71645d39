"""Projections: deterministic folds of the event log into queryable tables.

One module per projection, each owning its tables, the handlers of the event types it reacts
to, and its read queries (functions taking a hub.store.base.Cursor, over the live tables):

- canonical  — current state of canonical entities (`canonical.py`), with the latest source
               records and what waits for a link (`source_records.py`), deployed mapping
               versions (`mappings.py`) and the identity links (`links.py`);
- audit      — field-level history with lineage (`audit.py`);
- exceptions — everything that could not be captured, mapped, planned or written
               (`exceptions.py`; what each kind says: `exception_kinds.py`);
- outbound   — planned, applied and failed writes per target record (`outbound.py`).

`fold.py` is the coordinator: it dispatches each event to the projections that react to it,
runs the re-map queue, deploys mappings and flushes the row caches; `runner.py` tracks
positions, catches up, rebuilds into fresh tables and swaps, and computes checksums.
Hub's top (outbound, engine, queries, cli) reads through the projection modules' public read
API (their `__all__`), never through the fold's internals.
"""

from projections.runner import PROJECTIONS, Projector

__all__ = ["PROJECTIONS", "Projector"]
