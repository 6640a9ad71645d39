"""A mapping file deployed to the store: a MappingDeployed event on the mapping's stream,
carrying its spec, digest and the canonical schemas it maps to (the projections fold them)."""

from __future__ import annotations

import json
from pathlib import Path

from hub.canonical_schemas import CanonicalSchemas
from hub.errors import ConfigError
from hub.ingest import now_micros
from hub.mapping.model import Mapping, load_mapping
from hub.schemas import hub_schema
from hub.store.base import EventStore
from hub.store.streams import EventType, mapping_stream

__all__ = ["deploy_mapping", "deployed_canonical"]


def deploy_mapping(
    store: EventStore, path: Path, schemas: CanonicalSchemas, *, force: bool = False
) -> int | None:
    """Deploy the mapping file at `path` (config key `mapping`), mapping to `schemas`, if its
    content or the schemas changed since the last deployment (or `force`): the new version,
    else None. Schemas that do not follow the deployed ones raise IncompatibleSchemaError."""
    if not path.exists():
        raise ConfigError(f"mapping file {path} (config key `mapping`) does not exist")
    candidate = load_mapping(path, known_entities=schemas.fields())
    stream = mapping_stream(candidate.name)
    last = store.last(stream)
    canonical = schemas.to_json()
    if last is not None:
        before = store.codec.decode(last.payload)
        unchanged = (before["digest"], before.get("canonical", "")) == (
            candidate.digest,
            canonical,
        )
        if unchanged and not force:
            return None
        schemas.check_follows(CanonicalSchemas.from_json(before.get("canonical")))
    schema = hub_schema("mapping_deployed")
    store.codec.add(schema)
    record = {
        "name": candidate.name,
        "spec": json.dumps(candidate.spec, sort_keys=True),
        "digest": candidate.digest,
        "at": now_micros(),
        "canonical": canonical,
    }
    return store.append_next(
        stream,
        EventType.MAPPING_DEPLOYED,
        lambda version: store.codec.encode(schema, {**record, "version": version}),
    )


def deployed_canonical(store: EventStore, mapping: Mapping | None) -> str | None:
    """The canonical schemas deployed with `mapping` (their JSON; None: the built-in ones)."""
    last = None if mapping is None else store.last(mapping_stream(mapping.name))
    deployed = {} if last is None else store.decode(last)
    canonical = deployed.get("canonical") if isinstance(deployed, dict) else None
    return None if canonical is None else str(canonical)
