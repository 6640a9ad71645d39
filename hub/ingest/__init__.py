"""Ingest: Source batches → validated Avro facts, appended with the connector's checkpoint.

- `ingestor`: the Ingestor (a batch → its events + the checkpoint, in one transaction) and its
  IngestReport;
- `envelope`: the SourceChanged envelope codec (and times as integer microseconds);
- `quarantine`: input that cannot become a fact, kept with why and how to fix it;
- `reconcile`: hard deletes found by comparing key sets, and the refusal of implausible ones.

Ground layer: imports hub's ground only (never `projections`, `hub.outbound`, `hub.engine` or
`hub.cli`).
"""

from hub.ingest.envelope import DELETED, OPS, micros, now_micros
from hub.ingest.ingestor import Ingestor, IngestReport
from hub.ingest.reconcile import ReconcileRefused
from hub.store.streams import connector_stream, quarantine_stream, source_stream

__all__ = [
    "DELETED",
    "OPS",
    "IngestReport",
    "Ingestor",
    "ReconcileRefused",
    "connector_stream",
    "micros",
    "now_micros",
    "quarantine_stream",
    "source_stream",
]
