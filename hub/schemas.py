"""Schemas: the hub's own event schemas, the canonical entity schemas, source envelopes, and
the backward-compatibility rule for source-object schemas.

- `schemas/hub/<name>.avsc`: events the hub writes (checkpoints, quarantine, mappings, outbound).
- `schemas/canonical/<entity>/v<N>.avsc`: canonical entities; v<N> must read v<N-1> data.
- Source envelopes are generated: one per (system, object, record-schema version), shaped like
  `schemas/hub/source_changed.avsc` with `after` typed as the object's record schema.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from importlib import resources
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from hub.avro import Schema
from hub.errors import IncompatibleSchemaError, SchemaError

_NAME = re.compile(r"[^A-Za-z0-9_]")


def _root() -> Any:
    return resources.files("schemas")


@cache
def hub_schema(name: str) -> Schema:
    """A hub event schema by file stem, e.g. `hub_schema("checkpoint_advanced")`."""
    return Schema.from_json((_root() / "hub" / f"{name}.avsc").read_text())


def canonical_entities() -> list[str]:
    """Names of canonical entities (Account, Person, ...), sorted."""
    return sorted(canonical_versions(d.name)[-1].name.rsplit(".", 1)[-1] for d in _entity_dirs())


def _entity_dirs() -> list[Any]:
    return [
        d for d in (_root() / "canonical").iterdir() if d.is_dir() and not d.name.startswith("_")
    ]


@cache
def canonical_versions(entity: str) -> list[Schema]:
    """Every version of a canonical entity's schema, oldest first."""
    folder = _root() / "canonical" / entity.lower()
    if not folder.is_dir():
        raise SchemaError(
            f"unknown canonical entity {entity!r}; known: {', '.join(canonical_entities())}"
        )
    files = sorted(
        (f for f in folder.iterdir() if f.name.endswith(".avsc")),
        key=lambda f: int(f.name[1:].split(".")[0]),
    )
    return [Schema.from_json(f.read_text()) for f in files]


def canonical_schema(entity: str) -> Schema:
    """The latest version of a canonical entity's schema."""
    return canonical_versions(entity)[-1]


def canonical_fields() -> dict[str, list[str]]:
    """Canonical entity → its field names (latest versions), to check mappings against."""
    return {
        entity: [f["name"] for f in canonical_schema(entity).parsed["fields"]]
        for entity in canonical_entities()
    }


def compatibility_problems(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    """Why data written with `writer` cannot be read with `reader` (empty list: compatible)."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return [
        f"{_where(reader, loc)}: {msg}"
        for msg, loc in zip(result.messages, result.locations, strict=False)
    ] or ["incompatible"]


def _where(schema: dict[str, Any], location: Any) -> str:
    """`/fields/1/type` → `field 'minutes'` (the reader's field at that index)."""
    parts = [p for p in str(location).split("/") if p]
    names = []
    node: Any = schema
    for i, part in enumerate(parts):
        if (
            part == "fields"
            and i + 1 < len(parts)
            and parts[i + 1].isdigit()
            and isinstance(node, dict)
        ):
            fields = node.get("fields", [])
            idx = int(parts[i + 1])
            if idx < len(fields):
                node = fields[idx]
                names.append(str(node["name"]))
                node = node.get("type")
    return f"field {'.'.join(repr(n) for n in names)}" if names else str(location)


def check_backward(new: dict[str, Any], old: dict[str, Any], subject: str) -> None:
    """Raise IncompatibleSchemaError unless `new` can read everything written with `old`."""
    problems = compatibility_problems(new, old)
    if problems:
        raise IncompatibleSchemaError(
            f"the schema of {subject} changed incompatibly: {'; '.join(problems)}. "
            "Only backward-compatible changes are accepted (add fields as optional with a "
            "default; do not remove a field without a default or change its type). Fix the "
            "source or its declared schema, then `synchub exceptions retry` the quarantined batch."
        )


def avro_name(text: str) -> str:
    """A valid Avro name part for a system or object name."""
    cleaned = _NAME.sub("_", text)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"


def envelope_schema(system: str, obj: str, record: dict[str, Any]) -> Schema:
    """The generated envelope schema of one source object's changes (see module docstring)."""
    template = json.loads(hub_schema("source_changed").json)
    namespace = f"synchub.source.{avro_name(system)}.{avro_name(obj)}"
    body = copy.deepcopy(record)
    body["name"] = "Record"
    body["namespace"] = namespace
    fields = template["fields"]
    fields[-1] = {**fields[-1], "type": ["null", body]}
    fields[0]["type"] = {"type": "fixed", "name": "Digest", "size": 8}
    fields[1]["type"] = {
        "type": "enum",
        "name": "ChangeOp",
        "symbols": ["create", "update", "delete"],
    }
    envelope = {
        "type": "record",
        "name": "Changed",
        "namespace": namespace,
        "doc": f"A change of one {obj} record in {system}.",
        "fields": fields,
    }
    return Schema.from_dict(envelope)


def record_schema_of(envelope: Schema) -> dict[str, Any]:
    """The source-object record schema embedded in an envelope schema."""
    after = json.loads(envelope.json)["fields"][-1]["type"][1]
    return dict(after)
