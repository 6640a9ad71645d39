"""Mappings: source records → canonical entities (inbound) → target records (outbound).

A mapping document (YAML or JSON, see docs/mappings.md) is checked and compiled once by
`load_mapping` / `Mapping.from_dict`; a malformed document raises MappingSpecError naming the
path of each bad item. Applying a rule evaluates precompiled field pipelines
(`SOURCE | STEP ARG... | ...`); a value a rule cannot handle raises MappingError with the
field, the rule and the offending value.

Modules: `spec` (document shape), `lexer` and `pipeline` (pipelines), `steps` (the step
table) with `convert`, `text`, `values` and `checks` (the step functions), `rules` (compiled
rules), `compiler` (document → rules), `model` (the Mapping),
`record` (a rule's result), `compiled` (inbound rules generated into plain Python functions,
which `InboundRule.apply` runs; the interpreter stays their fallback, see its docstring).
"""

from __future__ import annotations

from hub.errors import MappingError, MappingSpecError
from hub.mapping.model import InboundRule, MappedRecord, Mapping, OutboundRule, load_mapping
from hub.mapping.pipeline import Pipeline, compile_pipeline
from hub.mapping.runtime import Context, Lookup, MissingLinkError, MissingTargetKeyError
from hub.mapping.spec import canonical_json
from hub.mapping.steps import STEPS

__all__ = [
    "STEPS",
    "Context",
    "InboundRule",
    "Lookup",
    "MappedRecord",
    "Mapping",
    "MappingError",
    "MappingSpecError",
    "MissingLinkError",
    "MissingTargetKeyError",
    "OutboundRule",
    "Pipeline",
    "canonical_json",
    "compile_pipeline",
    "load_mapping",
]
