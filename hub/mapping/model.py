"""The compiled mapping: inbound rules (source record → canonical entity), outbound rules
(canonical entity → target record) and ownership (which system is the system of record).

Every pipeline is compiled once, when the mapping is built (hub.mapping.compiler, into the
rules of hub.mapping.rules); applying a rule only evaluates.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import MappingSpecError
from hub.mapping.compiler import Compiler
from hub.mapping.record import MappedRecord
from hub.mapping.rules import InboundRule, OutboundRule
from hub.mapping.spec import (
    canonical_json,
    digest_of,
    parse_document,
    read_document,
    summarize,
)
from hub.mapping.valuation import ValuationRule

__all__ = [
    "InboundRule",
    "MappedRecord",
    "Mapping",
    "OutboundRule",
    "ValuationRule",
    "load_mapping",
]


@dataclass(frozen=True, eq=False)
class Mapping:
    """One version of a mapping document, compiled. `spec` is the document as loaded
    (JSON-able) and `digest` the SHA-256 of its canonical JSON."""

    name: str
    version: int
    digest: str
    spec: dict[str, Any] = field(repr=False)
    _inbound: dict[tuple[str, str], InboundRule] = field(repr=False)
    _outbound: tuple[OutboundRule, ...] = field(repr=False)
    _owners: dict[str, tuple[str | None, dict[str, str]]] = field(repr=False)
    _valuations: tuple[ValuationRule, ...] = field(repr=False, default=())

    @classmethod
    def from_dict(
        cls,
        spec: dict[str, Any],
        version: int = 0,
        known_entities: Collection[str] | None = None,
    ) -> Mapping:
        """Check and compile a document; MappingSpecError lists every problem by its path.

        With `known_entities`, entity names (and the entities of `link`/`canonical` steps)
        must be among them; when it maps each entity to its field names (see
        hub.schemas.canonical_fields), the canonical fields the rules set, own or read must be
        among those too.
        """
        doc = parse_document(spec)
        compiler = Compiler(known_entities)
        inbound = compiler.inbound(doc)
        outbound = compiler.outbound(doc)
        owners = compiler.owners(doc)
        valuations = compiler.valuations(doc)
        if compiler.problems:
            raise MappingSpecError(summarize(doc.name, compiler.problems))
        snapshot = _snapshot(spec)
        digest = digest_of(snapshot)
        return cls(doc.name, version, digest, snapshot, inbound, outbound, owners, valuations)

    @property
    def spec_json(self) -> str:
        """The document as canonical JSON (what a MappingDeployed event stores)."""
        return canonical_json(self.spec)

    def inbound(self, system: str, object: str) -> InboundRule | None:
        """The rule for source object system/object, if the mapping has one."""
        return self._inbound.get((system, object))

    def outbound(self, entity: str) -> list[OutboundRule]:
        """Every target rule for `entity`, in document order."""
        return [rule for rule in self._outbound if rule.entity == entity]

    def outbound_for(self, system: str) -> list[OutboundRule]:
        """Every target rule writing to `system`, in document order."""
        return [rule for rule in self._outbound if rule.system == system]

    def valuation(self, entity: str) -> ValuationRule | None:
        """The rule that values `entity` records, if the mapping has one."""
        return next((r for r in self._valuations if r.entity == entity), None)

    def valuations(self) -> tuple[ValuationRule, ...]:
        """Every valuation rule, in document order."""
        return self._valuations

    def owner(self, entity: str, field: str) -> str | None:
        """The system of record for entity.field: its override, else the entity's owner."""
        owner, overrides = self._owners.get(entity, (None, {}))
        return overrides.get(field, owner)

    def references(self) -> dict[str, set[str]]:
        """Entity → its fields that target rules follow back with `referenced_by` or `sum_of` (an
        Opportunity's `account_id` when an Account's `when` counts its won deals): when such
        an entity changes, the entity its field names must be planned again too."""
        out: dict[str, set[str]] = {}
        for _, _, args in self._lookups():
            out.setdefault(str(args[0]), set()).add(str(args[1]))
        return out

    def siblings(self) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
        """Entity → (FIELD, conditions) of the `sum_of`/`referenced_by` steps its own target
        rules run over entities of the same kind (a person's hours that day, over the day's
        entries): when one such entity changes, those sharing its FIELD and conditions
        (`{field}` read from it) must be planned again too, since their checks read it."""
        out: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
        for rule, name, args in self._lookups():
            if name in ("referenced_by", "sum_of") and args[0] == rule.entity:
                where = args[2:] if name == "referenced_by" else args[3:]
                pair = (str(args[1]), tuple(where))
                if pair not in out.setdefault(rule.entity, []):
                    out[rule.entity].append(pair)
        return out

    def dependents(self) -> dict[str, list[tuple[str, str, str]]]:
        """Entity K → (FIELD of K, entity E, field F of E) for each lookup step over K that a
        target rule of E runs first on its field F (a Task's `project_id | values_of
        Assignment project_id ...`): when a K changes, the E entities whose F equals the K's
        FIELD must be planned again, since their lookup reads it."""
        out: dict[str, list[tuple[str, str, str]]] = {}
        for rule, source, (name, _, args, _) in self._from_fields():
            if name in _LOOKUP_STEPS:
                found = (str(args[1]), rule.entity, source)
                if found not in out.setdefault(str(args[0]), []):
                    out[str(args[0])].append(found)
        return out

    def key_dependents(self) -> list[tuple[str, str]]:
        """(entity E, field F) of the target rules of E with a pipeline `F | target_key ...`:
        when the entity an E's F names is written, that E is planned again (it may have
        waited for the key)."""
        out: list[tuple[str, str]] = []
        for rule, source, first in self._from_fields():
            if first[0] == "target_key" and (rule.entity, source) not in out:
                out.append((rule.entity, source))
        return out

    def _from_fields(self) -> Iterator[tuple[OutboundRule, str, Any]]:
        """(rule, canonical field, first step) of every target-rule pipeline that starts from
        a canonical field of the rule's entity (not a `with` value) and has steps."""
        for rule in self._outbound:
            computed = {name for name, _ in rule.let}
            for pipeline in rule.pipelines():
                source = pipeline.source_field
                if source is not None and source not in computed and pipeline.steps:
                    yield rule, source, pipeline.steps[0]

    def _lookups(self) -> Iterator[tuple[OutboundRule, str, tuple[Any, ...]]]:
        """(rule, step name, args) of every step of the target rules that reads other
        entities by a field of theirs (`referenced_by`, `sum_of`, `latest_of`, `values_of`)."""
        for rule in self._outbound:
            for pipeline in rule.pipelines():
                for name, _, args, _ in pipeline.steps:
                    if name in _LOOKUP_STEPS:
                        yield rule, name, tuple(args)

    def entities(self) -> list[str]:
        """Every entity the document names (ownership, sources, targets), sorted."""
        names = set(self._owners)
        names.update(rule.entity for rule in self._inbound.values())
        names.update(rule.entity for rule in self._outbound)
        names.update(rule.entity for rule in self._valuations)
        return sorted(names)


_LOOKUP_STEPS = ("referenced_by", "sum_of", "sums_by", "latest_of", "earliest_of", "values_of")
"""The steps that read other entities by a field of theirs."""


def load_mapping(
    path: Path, version: int = 0, known_entities: Collection[str] | None = None
) -> Mapping:
    """Read and compile the mapping file at `path` (.yaml, .yml or .json)."""
    try:
        return Mapping.from_dict(read_document(path), version, known_entities)
    except MappingSpecError as exc:
        message = str(exc)
        if not message.startswith(str(path)):
            message = f"{path}: {message}"
        raise MappingSpecError(message) from None


def _snapshot(spec: dict[str, Any]) -> dict[str, Any]:
    try:
        copied: dict[str, Any] = json.loads(json.dumps(spec, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise MappingSpecError(f"the mapping document is not JSON-able: {exc}") from None
    return copied
