"""Avro single-object payloads: the schema cache and codec (`single_object`) and the decoders
generated per writer schema (`generated`). `hub.avro` re-exports the same names."""

from __future__ import annotations

from hub.codec.generated import BodyDecoder, Unsupported, compile_decoder, decoder_source
from hub.codec.single_object import HEADER_LEN, MAGIC, Codec, PayloadDecoder, Schema

__all__ = [
    "HEADER_LEN",
    "MAGIC",
    "BodyDecoder",
    "Codec",
    "PayloadDecoder",
    "Schema",
    "Unsupported",
    "compile_decoder",
    "decoder_source",
]
