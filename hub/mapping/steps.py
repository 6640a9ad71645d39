"""The step table: every pipeline step with its parameters, and how its arguments are checked
and prepared once, at load time.

A compiled step is `(name, fn, args, handles_none)`; the pipeline calls `fn(value, args, ctx)`
and skips the call when the value is None unless `handles_none`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from hub.mapping import checks, convert, text, values
from hub.mapping.runtime import Context

__all__ = ["STEPS", "CompiledStep", "Param", "StepDef", "compile_step", "parse_arg"]

StepFn = Callable[[Any, tuple[Any, ...], Context], Any]
CompiledStep = tuple[str, StepFn, tuple[Any, ...], bool]
ArgKind = Literal["text", "json", "int", "count", "number", "bound", "object"]

_KIND_WORDS = {
    "int": "an integer",
    "count": "a whole number >= 0",
    "number": "a finite number",
    "bound": "a finite number or {field}",
    "object": 'a JSON object like {"A": true}',
}


@dataclass(frozen=True, slots=True)
class Param:
    """One step parameter: its name in messages, its kind, and whether it may be left out."""

    name: str
    kind: ArgKind
    optional: bool = False


@dataclass(frozen=True, slots=True)
class StepDef:
    """A step: its function, parameters, one-line summary, and optional argument preparation."""

    name: str
    fn: StepFn
    params: tuple[Param, ...]
    summary: str
    handles_none: bool = False
    prepare: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None
    entity_param: int | None = None

    @property
    def usage(self) -> str:
        """How the step is written, e.g. `decimal [PLACES]`."""
        words = [f"[{p.name}]" if p.optional else p.name for p in self.params]
        return " ".join([self.name, *words])


def _nonzero(args: tuple[Any, ...]) -> tuple[Any, ...]:
    if args[0] == 0:
        raise ValueError("N must not be 0")
    return _with_decimal(args)


def _with_decimal(args: tuple[Any, ...]) -> tuple[Any, ...]:
    number = args[0]
    return (number, Decimal(repr(number)) if isinstance(number, float) else Decimal(number))


_WHERE = (
    Param("FIELD2", "text", optional=True),
    Param("VALUE2", "json", optional=True),
    Param("FIELD3", "text", optional=True),
    Param("VALUE3", "json", optional=True),
)
"""Further (FIELD, VALUE) conditions of a step that selects entities; `{field}` in VALUE is the
current record's field."""


def _pairs(fixed: int) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """Checks that the arguments after the first `fixed` come in FIELD VALUE pairs."""

    def prepare(args: tuple[Any, ...]) -> tuple[Any, ...]:
        if (len(args) - fixed) % 2:
            raise ValueError(f"{args[-1]!r} has no value: conditions come as FIELD VALUE pairs")
        return args

    return prepare


def _regex(args: tuple[Any, ...]) -> tuple[Any, ...]:
    try:
        pattern = re.compile(args[0])
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"PATTERN {args[0]!r} is not a valid regular expression: {exc}") from None
    group = args[1] if len(args) > 1 else (1 if pattern.groups else 0)
    if isinstance(group, bool) or not isinstance(group, int | str):
        raise ValueError(f"GROUP must be a group number or name, got {group!r}")
    if isinstance(group, int) and not 0 <= group <= pattern.groups:
        raise ValueError(f"GROUP {group} does not exist: the pattern has {pattern.groups} groups")
    if isinstance(group, str) and group not in pattern.groupindex:
        raise ValueError(f"the pattern has no group named {group!r}")
    return (pattern, group)


def _separator(args: tuple[Any, ...]) -> tuple[Any, ...]:
    if not args[0]:
        raise ValueError("SEP must not be empty")
    return args


def _tag_name(args: tuple[Any, ...]) -> tuple[Any, ...]:
    name = args[0].lstrip("#")
    if not name or any(ch.isspace() for ch in name):
        raise ValueError(f"NAME must be a tag without spaces, got {args[0]!r}")
    return (name.casefold(),)


def _step(name: str, fn: StepFn, summary: str, *params: Param, **options: Any) -> StepDef:
    return StepDef(name, fn, params, summary, **options)


_PLACES = Param("PLACES", "count", optional=True)
_FORMAT = Param("FORMAT", "text", optional=True)


def _lookup3(name: str, fn: StepFn, third: str, what: str) -> StepDef:
    """A step over the ENTITY entities whose FIELD is the value, with a third parameter and
    FIELD2 VALUE2 ... conditions (latest_of, earliest_of, values_of)."""
    summary = f"{what}, among the ENTITY with FIELD = this value (and FIELD2 = VALUE2 ...)"
    return _step(
        name,
        fn,
        summary,
        Param("ENTITY", "text"),
        Param("FIELD", "text"),
        Param(third, "text"),
        *_WHERE,
        handles_none=True,
        prepare=_pairs(3),
        entity_param=0,
    )


STEPS: dict[str, StepDef] = {
    s.name: s
    for s in (
        _step("str", convert.to_str, "text form (bools as true/false, dates ISO)"),
        _step("int", convert.to_int, "integer from a number or numeric text"),
        _step("float", convert.to_float, "finite float from a number or numeric text"),
        _step("decimal", convert.to_decimal, "exact decimal, rounded half-up to PLACES", _PLACES),
        _step("bool", convert.to_bool, "true/false from a bool, int or yes/no word"),
        _step("date", convert.to_date, "date from ISO text or FORMAT (strptime)", _FORMAT),
        _step("datetime", convert.to_datetime, "UTC datetime from text, epoch or date", _FORMAT),
        _step("lower", text.lower, "text in lower case"),
        _step("upper", text.upper, "text in upper case"),
        _step("strip", text.strip, "text without surrounding whitespace"),
        _step(
            "default",
            values.default,
            "VALUE when None or empty",
            Param("VALUE", "json"),
            handles_none=True,
        ),
        _step("required", values.required, "error when None or empty", handles_none=True),
        _step(
            "map",
            values.map_,
            "look the text of the value up in OBJECT",
            Param("OBJECT", "object"),
            Param("DEFAULT", "json", optional=True),
        ),
        _step("div", convert.div, "divide by N", Param("N", "number"), prepare=_nonzero),
        _step("mul", convert.mul, "multiply by N", Param("N", "number"), prepare=_with_decimal),
        _step("round", convert.round_, "round to PLACES decimals", Param("PLACES", "int")),
        _step(
            "regex",
            text.regex,
            "GROUP of the first match of PATTERN; None if none",
            Param("PATTERN", "text"),
            Param("GROUP", "json", optional=True),
            prepare=_regex,
        ),
        _step(
            "split",
            text.split,
            "part INDEX of the text split on SEP; None if none",
            Param("SEP", "text"),
            Param("INDEX", "int"),
            prepare=_separator,
        ),
        _step("tags", text.tags, "list of #tags in the text"),
        _step(
            "has_tag",
            text.has_tag,
            "whether the text has #NAME (None: false)",
            Param("NAME", "text"),
            handles_none=True,
            prepare=_tag_name,
        ),
        _step(
            "tag_path", text.tag_path, "segment INDEX of the first #a/b tag", Param("INDEX", "int")
        ),
        _step("strip_tags", text.strip_tags, "text without #tags, spaces collapsed"),
        _step("max_len", text.max_len, "error when longer than N characters", Param("N", "count")),
        _step(
            "link",
            values.link,
            "canonical id linked to source record SYSTEM/OBJECT/value",
            Param("ENTITY", "text"),
            Param("SYSTEM", "text"),
            Param("OBJECT", "text"),
            entity_param=0,
        ),
        _step(
            "target_key",
            values.target_key,
            "key SYSTEM (its OBJECT record, if given) uses for a canonical id",
            Param("SYSTEM", "text"),
            Param("OBJECT", "text", optional=True),
        ),
        _step(
            "tag_prefix",
            text.tag_prefix,
            "first N segments of the first #a/b/c tag",
            Param("N", "count"),
        ),
        _step("slug", checks.slug, "lower-case, runs of other than a-z 0-9 / as '-'"),
        _step(
            "equals",
            checks.equals,
            "whether the value equals VALUE",
            Param("VALUE", "json"),
            handles_none=True,
        ),
        _step(
            "gt",
            checks.gt,
            "whether the number is greater than N (or the record's {field})",
            Param("N", "bound"),
            handles_none=True,
        ),
        _step(
            "le",
            checks.le,
            "whether the number is at most N (or the record's {field}; None: no limit)",
            Param("N", "bound"),
            handles_none=True,
        ),
        _step(
            "not_future",
            checks.not_future,
            "whether the date/time is not in the future",
            handles_none=True,
        ),
        _step(
            "is_set",
            checks.is_set,
            "whether the value is neither None nor empty",
            handles_none=True,
        ),
        _step(
            "both_set",
            checks.both_set,
            "whether the value and VALUE (a {field}) are both set",
            Param("VALUE", "json"),
            handles_none=True,
        ),
        _step("not", checks.not_, "boolean negation (None: true)", handles_none=True),
        _step(
            "exists",
            checks.exists,
            "whether the canonical entity with this id exists",
            handles_none=True,
        ),
        _step(
            "field_of",
            checks.field_of,
            "FIELD of the canonical entity with this id",
            Param("FIELD", "text"),
        ),
        _step(
            "referenced_by",
            checks.referenced_by,
            "how many ENTITY have FIELD = this canonical id (and FIELD2 = VALUE2 ...)",
            Param("ENTITY", "text"),
            Param("FIELD", "text"),
            *_WHERE,
            handles_none=True,
            prepare=_pairs(2),
            entity_param=0,
        ),
        _step(
            "sum_of",
            checks.sum_of,
            "sum of SUMFIELD over ENTITY with FIELD = this value (and FIELD2 = VALUE2 ...)",
            Param("ENTITY", "text"),
            Param("FIELD", "text"),
            Param("SUMFIELD", "text"),
            *_WHERE,
            handles_none=True,
            prepare=_pairs(3),
            entity_param=0,
        ),
        _step(
            "sums_by",
            checks.sums_by,
            "sum of SUMFIELD per BY over the ENTITY with FIELD = this value, as text",
            Param("ENTITY", "text"),
            Param("FIELD", "text"),
            Param("SUMFIELD", "text"),
            Param("BY", "text"),
            *_WHERE,
            handles_none=True,
            prepare=_pairs(4),
            entity_param=0,
        ),
        _step("join", checks.join, "a list's items as text joined by SEP", Param("SEP", "text")),
        _lookup3("latest_of", checks.latest_of, "ORDER", "id of the one of greatest ORDER"),
        _lookup3("earliest_of", checks.earliest_of, "ORDER", "id of the one of least ORDER"),
        _lookup3("values_of", checks.values_of, "OUTFIELD", "distinct OUTFIELD values"),
        _step(
            "minus",
            checks.minus,
            "the number minus N (or the record's {field}; None: 0), exactly",
            Param("N", "bound"),
        ),
        _step(
            "in_force",
            checks.in_force,
            "id of the ENTITY with FIELD = VALUE ... valid on this date (latest valid_from)",
            Param("ENTITY", "text"),
            Param("FIELD", "text"),
            Param("VALUE", "json"),
            *_WHERE,
            prepare=_pairs(1),
            entity_param=0,
        ),
        _step("id_part", values.id_part, "the id in a canonical id (Person/a → a); each of a list"),
        _step(
            "canonical",
            values.canonical,
            "canonical id ENTITY/value",
            Param("ENTITY", "text"),
            entity_param=0,
        ),
    )
}


def compile_step(
    name: str, texts: list[str], known_entities: Collection[str] | None = None
) -> CompiledStep:
    """Check and prepare one step written as `name texts...`; ValueError says what to fix."""
    step = STEPS.get(name)
    if step is None:
        close = difflib.get_close_matches(name, STEPS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown step {name!r}{hint}; the steps are: {', '.join(STEPS)}")
    least = sum(1 for p in step.params if not p.optional)
    if not least <= len(texts) <= len(step.params):
        count = str(least) if least == len(step.params) else f"{least} to {len(step.params)}"
        raise ValueError(
            f"step {name!r} takes {count} argument(s), got {len(texts)}: write it as '{step.usage}'"
        )
    args = tuple(_convert(step, p, t) for p, t in zip(step.params, texts, strict=False))
    if step.prepare is not None:
        try:
            args = step.prepare(args)
        except ValueError as exc:
            raise ValueError(f"step {name!r}: {exc} (write it as '{step.usage}')") from None
    if step.entity_param is not None and known_entities is not None:
        entity = args[step.entity_param]
        if entity not in known_entities:
            raise ValueError(
                f"step {name!r}: unknown entity {entity!r}; use one of: "
                f"{', '.join(sorted(known_entities))}"
            )
    return (name, step.fn, args, step.handles_none)


def parse_arg(text_: str) -> Any:
    """An argument's value: the JSON literal it spells (numbers, true, {"A": 1}...), else the
    text itself (the same object)."""
    try:
        return json.loads(text_, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return text_


def _no_constant(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON literal here")


def _convert(step: StepDef, param: Param, raw: str) -> Any:
    if param.kind == "text":
        return raw
    value = parse_arg(raw)
    if param.kind == "json":
        return value
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "count": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        "number": (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and math.isfinite(value)),
        "object": isinstance(value, dict),
        "bound": checks.is_field_ref(value)
        or (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and math.isfinite(value)),
    }[param.kind]
    if not ok:
        raise ValueError(
            f"step {step.name!r}: {param.name} must be {_KIND_WORDS[param.kind]}, got {raw!r} "
            f"(write it as '{step.usage}')"
        )
    return value
