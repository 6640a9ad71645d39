"""Compiling a checked mapping document into rules, collecting every problem (each named by
its path in the document) instead of stopping at the first."""

from __future__ import annotations

import difflib
from collections import abc
from collections.abc import Collection

from hub.errors import MappingSpecError
from hub.mapping.checks import is_field_ref
from hub.mapping.pipeline import Pipeline, compile_pipeline
from hub.mapping.rules import Checks, Fields, InboundRule, OutboundRule
from hub.mapping.spec import CheckDoc, MappingDoc
from hub.mapping.valuation import ValuationRule

__all__ = ["Compiler", "reads"]


class Compiler:
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
            located = [(f"with.{n}", p) for n, p in rule.let]
            located += [("when", when)] if when is not None else []
            located += [(f"fields.{n}", p) for n, p in rule.fields]
            for n, check, only in rule.require:
                located += [(f"require.{n}", check)] + ([(f"require.{n}", only)] if only else [])
            computed = set(tgt.let)
            for where, pipeline in located:  # canonical fields, `{field}` arguments included
                for read in sorted(reads(pipeline) - computed):
                    self.canonical_field(tgt.entity, read, f"{at}.{where}")
            rules.append(rule)
        return tuple(rules)

    def valuations(self, doc: MappingDoc) -> tuple[ValuationRule, ...]:
        rules: list[ValuationRule] = []
        first: dict[str, int] = {}
        for i, val in enumerate(doc.valuations):
            at = f"valuations[{i}]"
            self.entity(val.entity, f"{at}.entity")
            if val.entity in first:
                self.problems.append(
                    f"{at}: {val.entity} is already valued by valuations[{first[val.entity]}]:"
                    " merge the two rules into one"
                )
                continue
            first[val.entity] = i
            rule = ValuationRule(
                val.entity,
                self.ordered(self.fields(val.let, f"{at}.with"), f"{at}.with"),
                None if val.when is None else self.pipeline(val.when, f"{at}.when"),
                self.pipeline(val.hours, f"{at}.hours"),
                self.pipeline(val.rate, f"{at}.rate"),
                val.rate_field,
                val.currency_field,
            )
            located = [(f"with.{n}", p) for n, p in rule.let]
            located += [("when", rule.when)] if rule.when is not None else []
            located += [("hours", rule.hours), ("rate", rule.rate)]
            for where, pipeline in located:
                for read in sorted(reads(pipeline) - set(val.let)):
                    self.canonical_field(val.entity, read, f"{at}.{where}")
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
    return {str(n).strip("{}").split(".")[0] for n in names if n and not str(n).startswith("{$")}


_BROKEN = compile_pipeline("null")  # stands in for a pipeline that failed; never evaluated


def _is_tag(name: str) -> bool:
    return bool(name) and "#" not in name and not any(ch.isspace() for ch in name)
