"""Compiled mapping rules: an inbound rule (source record → canonical entity) and an outbound
rule (canonical entity → target record, with its `with` values, `when`, checks and fields).

Every pipeline is compiled once, when the mapping is built (hub.mapping.compiler); applying a
rule only evaluates.
"""

from __future__ import annotations

from collections import abc
from dataclasses import dataclass, field
from typing import Any

from hub.errors import MappingError
from hub.mapping.compiled import CompiledRule, compile_inbound
from hub.mapping.pipeline import Pipeline
from hub.mapping.record import MappedRecord, natural_id_of, truthy
from hub.mapping.runtime import Context, Lookup

__all__ = ["Checks", "Fields", "InboundRule", "OutboundRule", "Record"]

Record = abc.Mapping[str, Any]
Fields = tuple[tuple[str, Pipeline], ...]
Checks = tuple[tuple[str, Pipeline, Pipeline | None], ...]
"""`require` checks: (what must hold, its pipeline, the `when` it applies under or None)."""


@dataclass(frozen=True, slots=True, eq=False)
class InboundRule:
    """Maps records of source object system/object to canonical `entity`.

    `apply`, `natural_id` and `is_delete` run the rule compiled into plain functions
    (hub.mapping.compiled, generated on first use); the `*_interpreted` methods run the generic
    pipeline interpreter, which the compiled code falls back to for any record it gives up on,
    so both give the same results and the same errors.
    """

    system: str
    object: str
    entity: str
    id: Pipeline
    fields: Fields
    delete: Pipeline | None = None
    _compiled: CompiledRule | None = field(default=None, init=False, repr=False)
    _tried: bool = field(default=False, init=False, repr=False)

    def apply(self, key: str, record: Record, lookup: Lookup) -> MappedRecord:
        """The record as a canonical entity; MappingError names the first field that fails
        (the id first, then fields in document order)."""
        compiled = self._compiled if self._tried else self.compiled()
        if compiled is None:
            return self.apply_interpreted(key, record, lookup)
        result: MappedRecord = compiled.apply(key, record, lookup)
        return result

    def natural_id(self, key: str, record: Record, lookup: Lookup) -> str:
        """The record's natural id alone (its other fields may fail); MappingError if the id
        pipeline fails or gives no value."""
        compiled = self._compiled if self._tried else self.compiled()
        if compiled is None:
            return self.natural_id_interpreted(key, record, lookup)
        natural_id: str = compiled.natural_id(key, record, lookup)
        return natural_id

    def is_delete(self, record: Record, lookup: Lookup, key: str = "") -> bool:
        """Whether the `delete` pipeline calls this record deleted (False without one)."""
        if self.delete is None:
            return False
        compiled = self._compiled if self._tried else self.compiled()
        if compiled is None or compiled.is_delete is None:
            return self.is_delete_interpreted(record, lookup, key)
        return bool(compiled.is_delete(key, record, lookup))

    def compiled(self) -> CompiledRule | None:
        """The rule's generated functions (None: it has a step the compiler does not know)."""
        if not self._tried:
            compiled = compile_inbound(self)
            object.__setattr__(self, "_compiled", compiled)
            object.__setattr__(self, "_tried", True)
        return self._compiled

    def apply_interpreted(self, key: str, record: Record, lookup: Lookup) -> MappedRecord:
        """`apply` by the generic pipeline interpreter."""
        ctx = Context(record, key, self.system, self.object, lookup)
        natural_id = natural_id_of(self.id.evaluate(ctx, "id"), self.id)
        values = {name: pipeline.evaluate(ctx, name) for name, pipeline in self.fields}
        return MappedRecord(self.entity, natural_id, values)

    def natural_id_interpreted(self, key: str, record: Record, lookup: Lookup) -> str:
        """`natural_id` by the generic pipeline interpreter."""
        ctx = Context(record, key, self.system, self.object, lookup)
        return natural_id_of(self.id.evaluate(ctx, "id"), self.id)

    def is_delete_interpreted(self, record: Record, lookup: Lookup, key: str = "") -> bool:
        """`is_delete` by the generic pipeline interpreter."""
        if self.delete is None:
            return False
        ctx = Context(record, key, self.system, self.object, lookup)
        return truthy(self.delete.evaluate(ctx, "delete"), self.delete, "delete")


@dataclass(frozen=True, slots=True, eq=False)
class OutboundRule:
    """Maps canonical `entity` records to records of target object system/object."""

    system: str
    object: str
    entity: str
    when: Pipeline | None
    fields: Fields
    require: Checks = ()
    feedback: tuple[str, str, str] | None = None
    """(system, object, tag) to mark refused entities with, on the record they came from."""
    unwanted: str = "delete"
    """What becomes of a record written before once the entity is not wanted any more (`when`
    falsy, or the entity deleted): `delete` it, `keep` it as it is (no more writes), or open
    an `exception` for a person to decide (e.g. a project provisioned for a deal since lost)."""
    match: tuple[tuple[str, ...], ...] = ()
    """Before a create: rules (lists of target fields) to find the existing target record it
    would duplicate (hub.outbound.matching)."""
    let: Fields = ()
    """`with`: named values computed first, in order; later pipelines read them as fields."""

    def extended(self, canonical: Record, natural_id: str, lookup: Lookup) -> Record:
        """The canonical record with the rule's `with` values added (itself without any);
        MappingError names the `with` value that fails."""
        if not self.let:
            return canonical
        record = dict(canonical)
        ctx = Context(record, natural_id, self.system, self.object, lookup)
        for name, pipeline in self.let:
            record[name] = pipeline.evaluate(ctx, f"with.{name}")
        return record

    def pipelines(self) -> list[Pipeline]:
        """Every pipeline of the rule (with, when, require, fields)."""
        out = [p for _, p in self.let]
        out += [self.when] if self.when is not None else []
        for _, check, only in self.require:
            out += [check] if only is None else [only, check]
        return out + [p for _, p in self.fields]

    def refusals(self, canonical: Record, natural_id: str, lookup: Lookup) -> list[str]:
        """The `require` checks the record fails, as messages (empty: it may be written).
        A check that cannot even be evaluated fails with its error."""
        ctx = Context(canonical, natural_id, self.system, self.object, lookup)
        failed = []
        for name, pipeline, only in self.require:
            try:
                if only is not None and not only.evaluate(ctx, name):
                    continue
                ok = bool(pipeline.evaluate(ctx, name))
            except MappingError as exc:
                failed.append(f"{name} ({exc})")
                continue
            if not ok:
                failed.append(name)
        return failed

    def wants(self, canonical: Record, lookup: Lookup, natural_id: str = "") -> bool:
        """Whether the record belongs in the target: the `when` pipeline (True without one)."""
        if self.when is None:
            return True
        ctx = Context(canonical, natural_id, self.system, self.object, lookup)
        return truthy(self.when.evaluate(ctx, "when"), self.when, "when")

    def apply(self, canonical: Record, natural_id: str, lookup: Lookup) -> dict[str, Any]:
        """The target record's fields; MappingError names the first target field that fails."""
        ctx = Context(canonical, natural_id, self.system, self.object, lookup)
        return {name: pipeline.evaluate(ctx, name) for name, pipeline in self.fields}

    def source_fields(self) -> dict[str, str | None]:
        """Target field → the canonical field its pipeline starts from (None: a literal,
        template, $variable or `with` value)."""
        computed = {name for name, _ in self.let}
        return {
            name: None
            if (pipeline.source_field or "").split(".")[0] in computed
            else (pipeline.source_field)
            for name, pipeline in self.fields
        }
