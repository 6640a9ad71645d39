"""synchub: change capture, an Avro event store, rebuildable projections, idempotent write-back."""

__version__ = "0.1.0"
