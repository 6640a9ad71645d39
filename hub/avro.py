"""Avro single-object encoding: the names callers import, now living in `hub.codec`."""

from __future__ import annotations

from hub.codec import HEADER_LEN, MAGIC, Codec, PayloadDecoder, Schema

__all__ = ["HEADER_LEN", "MAGIC", "Codec", "PayloadDecoder", "Schema"]
