"""Filedrop schemas of undeclared JSONL objects: field types inferred from a sample of records.

An object without declared `fields` gets, for JSONL, the fields of the first `SAMPLE` records
(JSON objects that are not deletes) of the newest file that has any, each typed by its non-null
values: long and double make double, any other mix string, only nulls a nullable string. An
undeclared CSV object has one nullable string per header column (`NULLABLE_STRING`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from connectors.filedrop.config import FieldType, truthy
from connectors.filedrop.files import complete_lines

__all__ = ["NULLABLE_STRING", "SAMPLE", "sample_types"]

NULLABLE_STRING = FieldType("string", nullable=True)
"""The type of an undeclared field: a string or null."""
SAMPLE = 1000
"""How many records of the newest JSONL file give the inferred types of undeclared fields."""
_INFERRED: dict[type, str] = {bool: "boolean", int: "long", float: "double", str: "string"}


def sample_types(paths: Sequence[Path], delete_field: str | None) -> dict[str, str | None]:
    """Field → Avro type over the first SAMPLE records that are JSON objects and not deletes, of
    the first of `paths` that has one: every field seen, in order of first appearance, typed by
    its non-null values (long and double make double, any other mix string; None if only null)."""
    for path in paths:
        types = _sample_file(path, delete_field)
        if types:
            return types
    return {}


def _sample_file(path: Path, delete_field: str | None) -> dict[str, str | None]:
    types: dict[str, str | None] = {}
    seen = 0
    for line in complete_lines(path):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if not isinstance(value, dict) or (delete_field and truthy(value.get(delete_field))):
            continue
        for name, item in value.items():
            avro = None if item is None else _INFERRED.get(type(item), "string")
            known = types.get(name)
            if known is None or avro is None or known == avro:
                types[name] = known or avro
            else:
                types[name] = "double" if {known, avro} == {"long", "double"} else "string"
        seen += 1
        if seen >= SAMPLE:
            break
    return types
