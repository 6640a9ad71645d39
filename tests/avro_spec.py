"""The Avro specification's own fingerprint algorithm, written from the spec, to check what
synchub writes against something other than the libraries it uses."""

from __future__ import annotations


def crc64_avro(data: bytes) -> bytes:
    """The spec's CRC-64-AVRO (Rabin) fingerprint of `data`, its 8 bytes little-endian (as
    single-object encoding puts them on the wire)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")
