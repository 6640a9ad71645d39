"""The compiled mapping: inbound rules (source record → canonical entity), outbound rules
(canonical entity → target record) and ownership (which system is the system of record).

Every pipeline is compiled once, when the mapping is built; applying a rule only evaluates.
"""

from __future__ import annotations

import difflib
import json
from collections import abc
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import MappingError, MappingSpecError
from hub.mapping.checks import is_field_ref
from hub.mapping.compiled import CompiledRule, compile_inbound
from hub.mapping.pipeline import Pipeline, compile_pipeline
from hub.mapping.record import MappedRecord, natural_id_of, truthy
from hub.mapping.runtime import Context, Lookup
from hub.mapping.spec import (
    CheckDoc,
    MappingDoc,
    canonical_json,
    digest_of,
    parse_document,
    read_document,
    summarize,
)

__all__ = ["InboundRule", "MappedRecord", "Mapping", "OutboundRule", "load_mapping"]

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
    match: tuple[tuple[str, ...], ...] = ()
    """Before a create: rules (lists of target fields) to find the existing target record it
    would duplicate (hub.outbound.matching)."""
    """What becomes of a record written before once the entity is not wanted any more (`when`
    falsy, or the entity deleted): `delete` it, `keep` it as it is (no more writes), or open
    an `exception` for a person to decide (e.g. a project provisioned for a deal since lost)."""
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
        compiler = _Compiler(known_entities)
        inbound = compiler.inbound(doc)
        outbound = compiler.outbound(doc)
        owners = compiler.owners(doc)
        if compiler.problems:
            raise MappingSpecError(summarize(doc.name, compiler.problems))
        snapshot = _snapshot(spec)
        return cls(doc.name, version, digest_of(snapshot), snapshot, inbound, outbound, owners)

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

    def owner(self, entity: str, field: str) -> str | None:
        """The system of record for entity.field: its override, else the entity's owner."""
        owner, overrides = self._owners.get(entity, (None, {}))
        return overrides.get(field, owner)

    def references(self) -> dict[str, set[str]]:
        """Entity → its fields that target rules follow back with `referenced_by` or `sum_of` (an
        Opportunity's `account_id` when an Account's `when` counts its won deals): when such
        an entity changes, the entity its field names must be planned again too."""
        out: dict[str, set[str]] = {}
        for rule in self._outbound:
            for pipeline in rule.pipelines():
                for name, _, args, _ in pipeline.steps:
                    if name in ("referenced_by", "sum_of", "latest_of"):
                        out.setdefault(str(args[0]), set()).add(str(args[1]))
        return out

    def siblings(self) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
        """Entity → (FIELD, conditions) of the `sum_of`/`referenced_by` steps its own target
        rules run over entities of the same kind (a person's hours that day, over the day's
        entries): when one such entity changes, those sharing its FIELD and conditions
        (`{field}` read from it) must be planned again too, since their checks read it."""
        out: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
        for rule in self._outbound:
            for pipeline in rule.pipelines():
                for name, _, args, _ in pipeline.steps:
                    if name in ("referenced_by", "sum_of") and args[0] == rule.entity:
                        where = args[2:] if name == "referenced_by" else args[3:]
                        pair = (str(args[1]), tuple(where))
                        if pair not in out.setdefault(rule.entity, []):
                            out[rule.entity].append(pair)
        return out

    def entities(self) -> list[str]:
        """Every entity the document names (ownership, sources, targets), sorted."""
        names = set(self._owners)
        names.update(rule.entity for rule in self._inbound.values())
        names.update(rule.entity for rule in self._outbound)
        return sorted(names)


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


class _Compiler:
    """Compiles a checked document, collecting every problem instead of stopping at the first."""

    def __init__(self, known_entities: Collection[str] | None) -> None:
        self.known = None if known_entities is None else frozenset(known_entities)
        self.fields_of: dict[str, frozenset[str]] | None = (
            {e: frozenset(f) for e, f in known_entities.items()}
            if isinstance(known_entities, abc.Mapping)
            else None
        )
        self.problems: list[str] = []

    def canonical_field(self, entity: str, name: str | None, at: str) -> None:
        """A problem if `name` is not a field of `entity` (when the fields are known)."""
        if self.fields_of is None or name is None or entity not in self.fields_of:
            return
        name = name.split(".", 1)[0]
        known = self.fields_of[entity]
        if name in known:
            return
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.problems.append(
            f"{at}: {entity} has no field {name!r}{hint}: use one of {', '.join(sorted(known))}"
        )

    def inbound(self, doc: MappingDoc) -> dict[tuple[str, str], InboundRule]:
        rules: dict[tuple[str, str], InboundRule] = {}
        first: dict[tuple[str, str], int] = {}
        for i, src in enumerate(doc.sources):
            at = f"sources[{i}]"
            self.entity(src.entity, f"{at}.entity")
            pair = (src.system, src.object)
            if pair in first:
                self.problems.append(
                    f"{at}: {src.system}/{src.object} is already mapped by sources[{first[pair]}]:"
                    " merge the two rules into one"
                )
                continue
            first[pair] = i
            for name in src.fields:
                self.canonical_field(src.entity, name, f"{at}.fields.{name}")
            rules[pair] = InboundRule(
                src.system,
                src.object,
                src.entity,
                self.pipeline(src.id, f"{at}.id"),
                self.fields(src.fields, f"{at}.fields"),
                None if src.delete is None else self.pipeline(src.delete, f"{at}.delete"),
            )
        return rules

    def outbound(self, doc: MappingDoc) -> tuple[OutboundRule, ...]:
        rules: list[OutboundRule] = []
        first: dict[tuple[str, str, str], int] = {}
        for i, tgt in enumerate(doc.targets):
            at = f"targets[{i}]"
            self.entity(tgt.entity, f"{at}.entity")
            triple = (tgt.system, tgt.object, tgt.entity)
            if triple in first:
                self.problems.append(
                    f"{at}: {tgt.entity} → {tgt.system}/{tgt.object} is already mapped by "
                    f"targets[{first[triple]}]: merge the two rules into one"
                )
                continue
            first[triple] = i
            when = None if tgt.when is None else self.pipeline(tgt.when, f"{at}.when")
            feedback = (
                None
                if tgt.feedback is None
                else (tgt.feedback.system, tgt.feedback.object, tgt.feedback.tag.lstrip("#"))
            )
            if tgt.feedback is not None and not _is_tag(tgt.feedback.tag.lstrip("#")):
                self.problems.append(
                    f"{at}.feedback.tag: {tgt.feedback.tag!r} is not a tag: write one word "
                    "without spaces or '#', e.g. sync-error"
                )
            rule = OutboundRule(
                tgt.system,
                tgt.object,
                tgt.entity,
                when,
                self.fields(tgt.fields, f"{at}.fields"),
                self.checks(tgt.require, f"{at}.require"),
                feedback,
                tgt.unwanted,
                tuple(tuple(rule) for rule in tgt.match),
                self.ordered(self.fields(tgt.let, f"{at}.with"), f"{at}.with"),
            )
            for j, match_rule in enumerate(tgt.match):
                unknown = [f for f in match_rule if f not in tgt.fields]
                if unknown:
                    self.problems.append(
                        f"{at}.match[{j}]: {', '.join(map(repr, unknown))} "
                        f"{'is not a field' if len(unknown) == 1 else 'are not fields'} of "
                        f"this rule: match on the target fields it writes "
                        f"({', '.join(tgt.fields)})"
                    )
            reads = [(f"with.{n}", p) for n, p in rule.let]
            reads += [("when", when)] if when is not None else []
            reads += [(f"fields.{n}", p) for n, p in rule.fields]
            for n, check, only in rule.require:
                reads += [(f"require.{n}", check)] + ([(f"require.{n}", only)] if only else [])
            computed = set(tgt.let)
            for where, pipeline in reads:
                for read in (pipeline.source_field, *pipeline.template_fields):
                    if read is None or read.split(".")[0] not in computed:
                        self.canonical_field(tgt.entity, read, f"{at}.{where}")
            rules.append(rule)
        return tuple(rules)

    def owners(self, doc: MappingDoc) -> dict[str, tuple[str | None, dict[str, str]]]:
        for name, entity in doc.entities.items():
            self.entity(name, f"entities.{name}")
            for field_name in entity.fields:
                self.canonical_field(name, field_name, f"entities.{name}.fields.{field_name}")
        return {name: (e.owner, dict(e.fields)) for name, e in doc.entities.items()}

    def checks(self, rules: dict[str, str | CheckDoc], at: str) -> Checks:
        out: list[tuple[str, Pipeline, Pipeline | None]] = []
        for name, rule in rules.items():
            if isinstance(rule, CheckDoc):
                where = f"{at}.{name}"
                check = self.pipeline(rule.check, f"{where}.check")
                out.append((name, check, self.pipeline(rule.when, f"{where}.when")))
            else:
                out.append((name, self.pipeline(rule, f"{at}.{name}"), None))
        return tuple(out)

    def ordered(self, let: Fields, at: str) -> Fields:
        """`with` values in an order where each comes after the ones it reads (a document's
        key order is not kept: the deployed mapping is canonical JSON); a cycle is a problem."""
        names = {name for name, _ in let}
        needs = {name: reads(p) & names for name, p in let}
        done: list[tuple[str, Pipeline]] = []
        pending = list(let)
        while pending:
            ready = [(n, p) for n, p in pending if needs[n] <= {d for d, _ in done}]
            if not ready:
                cycle = ", ".join(sorted(n for n, _ in pending))
                self.problems.append(f"{at}: {cycle} read each other in a circle: break it")
                return tuple(done)
            done += ready
            pending = [item for item in pending if item not in ready]
        return tuple(done)

    def fields(self, rules: dict[str, str], at: str) -> Fields:
        return tuple((name, self.pipeline(text, f"{at}.{name}")) for name, text in rules.items())

    def pipeline(self, text: str, at: str) -> Pipeline:
        try:
            return compile_pipeline(text, self.known)
        except MappingSpecError as exc:
            self.problems.append(f"{at}: {exc}")
            return _BROKEN

    def entity(self, name: str, at: str) -> None:
        if self.known is None or name in self.known:
            return
        close = difflib.get_close_matches(name, self.known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.problems.append(
            f"{at}: unknown entity {name!r}{hint}: use one of {', '.join(sorted(self.known))}"
        )


def reads(pipeline: Pipeline) -> set[str]:
    """The record fields a pipeline reads (top-level names): its source, its template's
    placeholders and its `{field}` arguments."""
    names = [pipeline.source_field, *pipeline.template_fields]
    names += [a for _, _, args, _ in pipeline.steps for a in args if is_field_ref(a)]
    return {str(n).strip("{}").split(".")[0] for n in names if n}


_BROKEN = compile_pipeline("null")  # stands in for a pipeline that failed; never evaluated


def _is_tag(name: str) -> bool:
    return bool(name) and "#" not in name and not any(ch.isspace() for ch in name)


def _snapshot(spec: dict[str, Any]) -> dict[str, Any]:
    try:
        copied: dict[str, Any] = json.loads(json.dumps(spec, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise MappingSpecError(f"the mapping document is not JSON-able: {exc}") from None
    return copied
