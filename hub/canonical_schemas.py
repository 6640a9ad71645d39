"""The canonical schemas in force: synchub's own (schemas/canonical/) and a firm's own.

A firm extends the canonical model without forking synchub: Avro schemas in a folder of its
configuration (`canonical_schemas`, by default `canonical/` beside the config file), laid out
like the built-in ones, `<folder>/<entity>/v<N>.avsc`:

- a new entity is a folder of its own (`engagement/v1.avsc`, a record named `Engagement`);
- new fields on a built-in entity are its next versions (`timeentry/v4.avsc` after the
  built-in v3), the new fields optional.

Checked when loaded (`synchub deploy`, `sync`, `run`), as the built-in schemas are by the test
suite; every error names the file and what to change:

- files v1, v2, ... without gaps, continuing the built-in versions of that entity;
- a record named like its folder (any case), with a `doc`, and a `doc` on every field;
- each version reads data written with the one before (new fields optional, with defaults;
  no field removed without a default, no type changed).

The firm's schemas are deployed with the mapping (`MappingDeployed.canonical`): a rebuild years
later checks values against the schemas in force then, whatever the folder holds now, and a
new deployment must read what the previous one deployed (no entity dropped; each entity's
latest version reads the previous deployment's).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.avro import Schema
from hub.errors import IncompatibleSchemaError, SchemaError
from hub.schemas import canonical_entities, canonical_versions, compatibility_problems

__all__ = ["BUILTIN", "CanonicalSchemas"]

_VERSION_FILE = re.compile(r"v([1-9][0-9]*)\.avsc\Z")
_HOW = (
    "see docs/events-and-schemas.md, 'Your own canonical entities and fields', for the layout "
    "and an example"
)


@dataclass(frozen=True)
class CanonicalSchemas:
    """The built-in canonical schemas plus `own`: entity → a firm's versions, oldest first
    (for a built-in entity, the versions after the built-in ones)."""

    own: Mapping[str, tuple[Schema, ...]] = field(default_factory=dict)

    def entities(self) -> list[str]:
        """Every canonical entity name, sorted."""
        return sorted(set(canonical_entities()) | set(self.own))

    def versions(self, entity: str) -> list[Schema]:
        """Every version of `entity`, oldest first (SchemaError: no such entity)."""
        builtin = _builtin(entity)
        own = list(self.own.get(entity, ()))
        if not builtin and not own:
            raise SchemaError(
                f"unknown canonical entity {entity!r}; known: {', '.join(self.entities())}"
            )
        return builtin + own

    def schema(self, entity: str) -> Schema:
        """The latest version of `entity`."""
        return self.versions(entity)[-1]

    def fields(self) -> dict[str, list[str]]:
        """Entity → its field names (latest versions), to check mappings against."""
        return {
            entity: [f["name"] for f in self.schema(entity).parsed["fields"]]
            for entity in self.entities()
        }

    # -- as deployed --------------------------------------------------------------------------

    def to_json(self) -> str:
        """The firm's schemas as deployed (`""` when there are none)."""
        if not self.own:
            return ""
        return json.dumps(
            {e: [json.loads(s.json) for s in versions] for e, versions in self.own.items()},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> CanonicalSchemas:
        """The schemas `to_json` wrote (empty or None: the built-in ones only)."""
        if not text:
            return BUILTIN
        own = json.loads(text)
        return cls({e: tuple(Schema.from_dict(s) for s in versions) for e, versions in own.items()})

    # -- from a folder ------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path | None) -> CanonicalSchemas:
        """The firm's schemas in `folder` (None or a missing folder: the built-in ones only);
        SchemaError / IncompatibleSchemaError saying which file is wrong and how to fix it."""
        if folder is None or not folder.is_dir():
            return BUILTIN
        own: dict[str, tuple[Schema, ...]] = {}
        for entity_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if entity_dir.name.startswith((".", "_")):
                continue
            schemas = _load_entity(entity_dir)
            if schemas:
                own[schemas[-1].name.rsplit(".", 1)[-1]] = tuple(schemas)
        return cls(own) if own else BUILTIN

    def check_follows(self, before: CanonicalSchemas) -> None:
        """Raise IncompatibleSchemaError unless these schemas read everything written under
        `before` (the previous deployment): no entity dropped, each latest reads its latest."""
        for entity in before.entities():
            if entity not in self.entities():
                raise IncompatibleSchemaError(
                    f"canonical entity {entity} was deployed before and its schemas are gone "
                    "from the canonical_schemas folder: put its folder back (an entity can "
                    f"be left unused, not removed); {_HOW}"
                )
            old, new = before.schema(entity), self.schema(entity)
            problems = compatibility_problems(json.loads(new.json), json.loads(old.json))
            if problems:
                raise IncompatibleSchemaError(
                    f"canonical entity {entity}: its latest schema cannot read data of the "
                    f"version deployed before ({'; '.join(problems)}); add a new version that "
                    f"reads it instead of changing a deployed one; {_HOW}"
                )


BUILTIN = CanonicalSchemas()
"""synchub's own canonical schemas, and no others."""


def _builtin(entity: str) -> list[Schema]:
    if entity not in canonical_entities():
        return []
    return list(canonical_versions(entity))


def _load_entity(entity_dir: Path) -> list[Schema]:
    """The versions in one entity folder, checked (see the module docstring)."""
    files: dict[int, Path] = {}
    for path in entity_dir.iterdir():
        found = _VERSION_FILE.match(path.name)
        if found is None:
            if path.suffix == ".avsc":
                raise SchemaError(f"{path}: name a schema file v<N>.avsc (v1.avsc, v2.avsc, ...)")
            continue
        files[int(found.group(1))] = path
    if not files:
        return []
    builtin_entity = next(
        (e for e in canonical_entities() if e.lower() == entity_dir.name.lower()), None
    )
    builtin = _builtin(builtin_entity) if builtin_entity else []
    expected = list(range(len(builtin) + 1, len(builtin) + len(files) + 1))
    if sorted(files) != expected:
        which = f"after synchub's v1..v{len(builtin)} of {builtin_entity}" if builtin else "from v1"
        raise SchemaError(
            f"{entity_dir}: versions must follow on without gaps {which}: expected "
            f"{', '.join(f'v{n}.avsc' for n in expected)}, found "
            f"{', '.join(f'v{n}.avsc' for n in sorted(files))}"
        )
    schemas = list(builtin)
    for number in expected:
        path = files[number]
        schema = _parse(path, entity_dir.name)
        if schemas:
            problems = compatibility_problems(json.loads(schema.json), json.loads(schemas[-1].json))
            if problems:
                raise IncompatibleSchemaError(
                    f"{path} cannot read data written with v{number - 1} ({'; '.join(problems)}): "
                    "add fields as optional with a default, never remove a field without a "
                    f"default or change its type; {_HOW}"
                )
        schemas.append(schema)
    return schemas[len(builtin) :]


def _parse(path: Path, folder: str) -> Schema:
    try:
        doc: Any = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SchemaError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("type") != "record":
        raise SchemaError(f"{path}: a canonical schema is an Avro record ({_HOW})")
    name = str(doc.get("name", ""))
    if name.lower() != folder.lower():
        raise SchemaError(
            f"{path}: the record is named {name!r} but its folder is {folder!r}; name the "
            'record like its folder (any case), e.g. folder engagement/ → "name": "Engagement"'
        )
    if not doc.get("doc"):
        raise SchemaError(f'{path}: give the record a "doc" saying what the entity is')
    fields = doc.get("fields")
    if not isinstance(fields, list) or not any(f.get("name") == "id" for f in fields):
        raise SchemaError(f'{path}: a canonical record needs an "id" field (its canonical id)')
    undocumented = [str(f.get("name")) for f in fields if not f.get("doc")]
    if undocumented:
        raise SchemaError(f'{path}: give every field a "doc"; missing on {", ".join(undocumented)}')
    try:
        return Schema.from_dict(doc)
    except Exception as e:  # fastavro's parse errors: unknown types, bad defaults, ...
        raise SchemaError(f"{path} is not a valid Avro schema: {e}") from None
