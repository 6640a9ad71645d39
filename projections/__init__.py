"""Projections: deterministic folds of the event log into queryable tables.

- canonical  — current state of canonical entities, the latest source records, identity links
               and deployed mapping versions (`canonical.py`, `links.py`);
- audit      — field-level history with lineage (`audit.py`);
- exceptions — everything that could not be captured, mapped or written (`exceptions.py`);
- outbound   — planned, applied and failed writes per target record (`outbound.py`).

`fold.py` applies one page of events to all of them; `runner.py` tracks positions, rebuilds
into fresh tables and swaps, and computes checksums.
"""

from projections.runner import PROJECTIONS, Projector

__all__ = ["PROJECTIONS", "Projector"]
