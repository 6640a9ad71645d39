"""Inbound rules compiled into plain Python functions, once per rule (hence per mapping version).

The generic interpreter (`Pipeline.evaluate`) loops over `(name, fn, args, handles_none)` for
every step of every field of every record. `compile_inbound` generates instead the source of one
function per rule that reads the fields and runs the steps as straight-line code: field reads,
templates and `$variables` inline; `default`, `lower`/`upper`/`strip`, `str`, `int`, `canonical`,
`map`, `has_tag`, `tag_path` and `strip_tags` inline for the values they commonly see (exact
`str`, `int`, None); every other step of the step table as a direct call of its own function
with its arguments bound at compile time (`decimal`, `date`, `div`, `round`, `slug`, `link`,
...), so the values are the interpreter's by construction.

The interpreter stays the reference: the generated code gives up on anything unusual (a value
of another type than the inline path expects, a step failing, a template field missing, a step
it does not know: one not in hub.mapping.steps.STEPS or replaced there) and then runs the
interpreter for that record, so every result and every error (its class, message, field, rule,
value, missing) is the interpreter's own. A record that falls back asks its lookups again: a
Lookup must answer the same question the same way (recording a miss twice must be harmless).

Proven by tests/unit/test_mapping_compiled.py (hypothesis): compiled and interpreted rules give
identical results and identical errors over generated records for every mapping of the tests,
demo/mapping.yaml and bench/_common.MAPPING_SPEC.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.mapping import convert, text, values
from hub.mapping.checks import is_field_ref
from hub.mapping.pipeline import Pipeline
from hub.mapping.record import MappedRecord, natural_id_of
from hub.mapping.runtime import Context, Lookup, as_text, walk
from hub.mapping.steps import STEPS

if TYPE_CHECKING:
    from hub.mapping.rules import InboundRule

__all__ = ["CompiledRule", "compile_inbound"]

Record = Mapping[str, Any]
ApplyFn = Callable[[str, Record, Lookup], Any]


class _GiveUp(Exception):
    """The inline code met something it leaves to the interpreter."""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """The generated functions of one inbound rule (each falls back to the interpreter)."""

    apply: ApplyFn
    """(key, record, lookup) → MappedRecord, as InboundRule.apply_interpreted."""
    natural_id: ApplyFn
    """(key, record, lookup) → str, as InboundRule.natural_id_interpreted."""
    is_delete: ApplyFn | None
    """(key, record, lookup) → bool, as InboundRule.is_delete_interpreted; None: no `delete`."""
    source: str
    """The generated Python source (for reading and debugging)."""


_INLINE_NEEDS_STR = {"lower": ".lower()", "upper": ".upper()", "strip": ".strip()"}
_DIRECT = frozenset(
    (
        "float", "decimal", "bool", "date", "datetime", "div", "mul", "round", "regex", "split",
        "tags", "tag_prefix", "max_len", "required", "slug", "equals", "gt", "not_future",
        "is_set", "both_set", "not", "le", "minus", "id_part", "join",
    )
)  # fmt: skip
_WITH_LOOKUP = frozenset(
    (
        "link", "target_key", "exists", "field_of", "referenced_by", "sum_of", "in_force",
        "latest_of", "earliest_of", "values_of", "sums_by",
    )
)  # fmt: skip

_NAMESPACE: dict[str, Any] = {
    "_GiveUp": _GiveUp,
    "_Context": Context,
    "_as_text": as_text,
    "_walk": walk,
    "_deepcopy": copy.deepcopy,
    "_scan": text.scan,
    "_to_int": convert.to_int,
    "_fresh": values._fresh,
}


class _Emitter:
    def __init__(self, system: str, object_: str) -> None:
        self.system = system
        self.object = object_
        self.consts: dict[str, Any] = {}
        self.counter = 0
        self.needs_ctx = False

    def const(self, value: Any, prefix: str = "C") -> str:
        self.counter += 1
        name = f"_{prefix}{self.counter}"
        self.consts[name] = value
        return name

    def tmp(self) -> str:
        self.counter += 1
        return f"_t{self.counter}"

    # -- sources ------------------------------------------------------------------------------

    def source(self, pipeline: Pipeline, out: list[str], ind: str) -> None:
        kind, arg = pipeline.source_spec
        if kind == "field":
            out.append(f"{ind}v = {self.field(arg)}")
        elif kind == "constant":
            if isinstance(arg, dict | list):
                out.append(f"{ind}v = _deepcopy({self.const(arg)})")
            else:
                out.append(f"{ind}v = {self.const(arg)}")
        elif kind == "variable":
            out.append(f"{ind}v = {self.variable(arg)}")
        elif kind == "template":
            pieces = []
            for part, placeholder in arg:
                if not placeholder:
                    pieces.append(repr(part))
                    continue
                t = self.tmp()
                getter = self.variable(part) if part.startswith("$") else self.field(part)
                out.append(f"{ind}{t} = {getter}")
                out.append(f"{ind}if {t}.__class__ is not str:")
                out.append(f"{ind}    if {t} is None:")
                out.append(f"{ind}        raise _GiveUp")
                out.append(f"{ind}    {t} = _as_text({t})")
                pieces.append(t)
            out.append(f"{ind}v = ''.join(({', '.join(pieces)},))")
        else:
            raise _GiveUp(f"unknown source {kind!r}")

    def field(self, path: str) -> str:
        parts = path.split(".")
        if len(parts) == 1:
            return f"record.get({path!r})"
        steps = tuple((part, int(part) if part.isdigit() else None) for part in parts)
        return f"_walk(record, {self.const(steps, 'P')})"

    def variable(self, name: str) -> str:
        if name == "$key":
            return "key"
        if name == "$system":
            return repr(self.system)
        if name == "$object":
            return repr(self.object)
        raise _GiveUp(f"unknown variable {name!r}")

    # -- steps --------------------------------------------------------------------------------

    def steps(self, pipeline: Pipeline, out: list[str], ind: str) -> None:
        for name, fn, args, handles_none in pipeline.steps:
            known = STEPS.get(name)
            if known is None or known.fn is not fn or known.handles_none != handles_none:
                raise _GiveUp(f"step {name!r} is not the step table's")
            body: list[str] = []
            inner = ind if handles_none else ind + "    "
            self.step(name, args, body, inner)
            if not handles_none:
                out.append(f"{ind}if v is not None:")
            out.extend(body)

    def step(self, name: str, args: tuple[Any, ...], out: list[str], ind: str) -> None:
        if name in _INLINE_NEEDS_STR:
            out.append(f"{ind}if v.__class__ is not str:")
            out.append(f"{ind}    raise _GiveUp")
            out.append(f"{ind}v = v{_INLINE_NEEDS_STR[name]}")
        elif name == "str":
            out.append(f"{ind}if v.__class__ is not str:")
            out.append(f"{ind}    v = _as_text(v)")
        elif name == "int":
            out.append(f"{ind}if v.__class__ is not int:")
            out.append(f"{ind}    v = _to_int(v, (), None)")
        elif name == "canonical":
            prefix = repr(f"{args[0]}/")
            fn, bound = self.const(STEPS[name].fn, "F"), self.const(args, "A")
            out.append(f"{ind}v = {prefix} + v if v.__class__ is str else {fn}(v, {bound}, None)")
        elif name == "default":
            value = args[0]
            fresh = f"_deepcopy({self.const(value)})" if isinstance(value, dict | list) else None
            out.append(f"{ind}if v is None or (isinstance(v, str) and not v):")
            out.append(f"{ind}    v = {fresh or self.const(value)}")
        elif name == "map":
            self.map(args, out, ind)
        elif name == "has_tag":
            out.append(f"{ind}if v is None:")
            out.append(f"{ind}    v = False")
            out.append(f"{ind}elif v.__class__ is str:")
            out.append(f"{ind}    v = {args[0]!r} in _scan(v)[1]")
            out.append(f"{ind}else:")
            out.append(f"{ind}    raise _GiveUp")
        elif name == "tag_path":
            index: int = args[0]
            t = self.tmp()
            long_enough = f"len({t}) > {index}" if index >= 0 else f"len({t}) >= {-index}"
            out.append(f"{ind}if v.__class__ is not str:")
            out.append(f"{ind}    raise _GiveUp")
            out.append(f"{ind}{t} = _scan(v)[2]")
            out.append(f"{ind}if {t} is None:")
            out.append(f"{ind}    v = None")
            out.append(f"{ind}elif {t}.__class__ is str:")
            out.append(f"{ind}    raise _GiveUp")
            out.append(f"{ind}else:")
            out.append(f"{ind}    v = {t}[{index}] if {long_enough} else None")
        elif name == "strip_tags":
            out.append(f"{ind}if v.__class__ is not str:")
            out.append(f"{ind}    raise _GiveUp")
            out.append(f"{ind}v = _scan(v)[3]")
        elif name in _DIRECT and not any(is_field_ref(a) for a in args):
            fn = self.const(STEPS[name].fn, "F")
            out.append(f"{ind}v = {fn}(v, {self.const(args, 'A')}, None)")
        elif name in _WITH_LOOKUP or name in _DIRECT:  # a `{field}` argument reads the record
            self.needs_ctx = True
            fn = self.const(STEPS[name].fn, "F")
            out.append(f"{ind}v = {fn}(v, {self.const(args, 'A')}, ctx)")
        else:
            raise _GiveUp(f"no code for step {name!r}")

    def map(self, args: tuple[Any, ...], out: list[str], ind: str) -> None:
        table: dict[str, Any] = args[0]
        mutable = any(isinstance(v, dict | list) for v in table.values())
        out.append(f"{ind}v = {self.const(table, 'M')}.get(")
        out.append(f"{ind}    v if v.__class__ is str else _as_text(v), _GiveUp")
        out.append(f"{ind})")
        out.append(f"{ind}if v is _GiveUp:")
        if len(args) < 2:
            out.append(f"{ind}    raise _GiveUp")
        else:
            default = args[1]
            mutable = mutable or isinstance(default, dict | list)
            out.append(f"{ind}    v = {self.const(default)}")
        if mutable:
            out.append(f"{ind}v = _fresh(v)")

    def pipeline(self, pipeline: Pipeline, out: list[str], ind: str) -> None:
        self.source(pipeline, out, ind)
        self.steps(pipeline, out, ind)


def compile_inbound(rule: InboundRule) -> CompiledRule | None:
    """The generated functions of an inbound rule, or None when a pipeline has a source or a
    step the compiler does not know (the rule then stays interpreted). Each generated function
    runs the rule's interpreted method for a record it gives up on."""
    system, object_, id_pipeline = rule.system, rule.object, rule.id
    fields, delete, entity = rule.fields, rule.delete, rule.entity
    emitter = _Emitter(system, object_)
    try:
        id_lines: list[str] = []
        emitter.pipeline(id_pipeline, id_lines, "        ")
        id_lines.append("        if v.__class__ is str and v:")
        id_lines.append("            nid = v")
        id_lines.append("        else:")
        id_lines.append("            nid = _natural_id(v, _ID)")
        field_lines: list[str] = []
        names = []
        for i, (name, pipeline) in enumerate(fields):
            emitter.pipeline(pipeline, field_lines, "        ")
            field_lines.append(f"        _f{i} = v")
            names.append(f"{name!r}: _f{i}")
        delete_lines: list[str] = []
        if delete is not None:
            emitter.pipeline(delete, delete_lines, "        ")
    except _GiveUp:
        return None
    ctx = (
        ["        ctx = _Context(record, key, _SYSTEM, _OBJECT, lookup)"]
        if emitter.needs_ctx
        else []
    )
    source = "\n".join(
        [
            "def apply(key, record, lookup):",
            "    try:",
            *ctx,
            *id_lines,
            *field_lines,
            f"        return _make(nid, {{{', '.join(names)}}})",
            "    except Exception:",
            "        return _apply(key, record, lookup)",
            "",
            "",
            "def natural_id(key, record, lookup):",
            "    try:",
            *ctx,
            *id_lines,
            "        return nid",
            "    except Exception:",
            "        return _natural_id_of(key, record, lookup)",
            "",
            "",
            "def is_delete(key, record, lookup):",
            "    try:",
            *ctx,
            *(delete_lines or ["        v = False"]),
            "        return bool(v)",
            "    except Exception:",
            "        return _is_delete(key, record, lookup)",
            "",
        ]
    )
    namespace = {
        **_NAMESPACE,
        **emitter.consts,
        "_SYSTEM": system,
        "_OBJECT": object_,
        "_ID": id_pipeline,
        "_make": lambda natural_id, values: MappedRecord(entity, natural_id, values),
        "_natural_id": natural_id_of,
        "_apply": rule.apply_interpreted,
        "_natural_id_of": rule.natural_id_interpreted,
        "_is_delete": lambda key, record, lookup: rule.is_delete_interpreted(record, lookup, key),
    }
    exec(compile(source, f"<mapping rule {system}/{object_}>", "exec"), namespace)
    return CompiledRule(
        namespace["apply"],
        namespace["natural_id"],
        namespace["is_delete"] if delete is not None else None,
        source,
    )
