"""Field pipelines: `SOURCE | STEP ARG... | ...`, compiled once and evaluated per record.

SOURCE is a field path (`customer.code`; digits index lists, a missing field gives None),
`$key`, `$system`, `$object`, a literal ('text' in single quotes, a number, null, true, false),
or a template with `{field}` placeholders (`{{` and `}}` stand for braces).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from hub.errors import MappingError, MappingSpecError, SyncHubError
from hub.mapping.lexer import Word, split_pipeline
from hub.mapping.runtime import (
    Context,
    MissingLinkError,
    MissingTargetKeyError,
    StepFailure,
    as_text,
    path_steps,
    show,
    walk,
)
from hub.mapping.steps import CompiledStep, compile_step, parse_arg

__all__ = ["Pipeline", "compile_pipeline"]

Getter = Callable[[Context], Any]
_VARIABLES: dict[str, Getter] = {
    "$key": lambda ctx: ctx.key,
    "$system": lambda ctx: ctx.system,
    "$object": lambda ctx: ctx.object,
}
_TEMPLATE_PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


SourceSpec = tuple[str, Any]
"""What a pipeline starts from, for hub.mapping.compiled: ("field", "a.b"), ("constant", value),
("variable", "$key"), ("template", ((text, is_placeholder), ...))."""


@dataclass(frozen=True, slots=True, eq=False)
class Pipeline:
    """A compiled pipeline. `source_field` is the field it starts from (None for literals,
    templates and $variables); `template_fields` are the fields a template source reads;
    `source_spec` says what the source is (see SourceSpec)."""

    text: str
    source_field: str | None
    source: Getter
    steps: tuple[CompiledStep, ...]
    template_fields: tuple[str, ...] = ()
    source_spec: SourceSpec = ("unknown", None)

    def evaluate(self, ctx: Context, field: str) -> Any:
        """The pipeline's value for one record; raises MappingError naming `field` and the rule.

        Errors of the hub's own (e.g. a StoreError from the lookup) propagate unchanged; no other
        exception escapes.
        """
        name: str | None = None
        value: Any = None
        try:
            value = self.source(ctx)
            for name, fn, args, handles_none in self.steps:  # noqa: B007 (name is read on error)
                if value is not None or handles_none:
                    value = fn(value, args, ctx)
            return value
        except StepFailure as exc:
            raise self._error(field, name, exc.message, value, exc.missing) from None
        except SyncHubError:
            raise
        except Exception as exc:
            what = f"failed on {show(value)}: {type(exc).__name__}: {exc}"
            raise self._error(field, name, what, value) from exc

    def _error(
        self,
        field: str,
        step: str | None,
        what: str,
        value: Any,
        missing: tuple[str, ...] | None = None,
    ) -> MappingError:
        where = f"field {field}: " + (f"step '{step}' " if step else "")
        message = f"{where}{what} (rule: {self.text})"
        if missing is not None:
            kind = MissingLinkError if step == "link" else MissingTargetKeyError
            return kind(message, field=field, rule=self.text, value=value, missing=missing)
        return MappingError(message, field=field, rule=self.text, value=value)


def compile_pipeline(text: str, known_entities: Collection[str] | None = None) -> Pipeline:
    """Parse and check a pipeline once; MappingSpecError says what is wrong and how to fix it."""
    try:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the pipeline is empty: write a field name, e.g. 'amount | decimal'")
        head, *rest = split_pipeline(text)
        if len(head) != 1:
            raise ValueError(
                f"the source must be one word, got {len(head)}: add '|' before "
                f"{head[1].text!r}, or quote the source"
            )
        source, field, placeholders, spec = _compile_source(head[0])
        steps = tuple(
            compile_step(words[0].text, [w.text for w in words[1:]], known_entities)
            for words in rest
        )
    except ValueError as exc:
        raise MappingSpecError(f"{exc} (rule: {text})") from None
    return Pipeline(text, field, source, steps, placeholders, spec)


def _compile_source(word: Word) -> tuple[Getter, str | None, tuple[str, ...], SourceSpec]:
    """The source's getter, the field it is (if it is one), the fields a template reads, and
    what the source is."""
    text = word.text
    if word.quote == "'":
        return _constant(text), None, (), ("constant", text)
    if word.quote is None:
        value = parse_arg(text)
        if value is not text:  # parse_arg hands back the very same str when it is not JSON
            return _constant(value), None, (), ("constant", value)
    if _PLACEHOLDER.search(text):
        render, names, parts = _template(text)
        return render, None, names, ("template", parts)
    if text.startswith("$"):
        return _variable(text), None, (), ("variable", text)
    return _field(text), text, (), ("field", text)


def _constant(value: Any) -> Getter:
    if isinstance(value, dict | list):
        return lambda ctx: copy.deepcopy(value)
    return lambda ctx: value


def _variable(name: str) -> Getter:
    getter = _VARIABLES.get(name)
    if getter is None:
        raise ValueError(f"unknown variable {name!r}: use $key, $system or $object")
    return getter


def _field(path: str) -> Getter:
    parts = path.split(".")
    if not all(parts):
        raise ValueError(f"field path {path!r} has an empty part: write it like 'customer.code'")
    if len(parts) == 1:
        return lambda ctx: ctx.record.get(path)
    steps = path_steps(path)
    return lambda ctx: walk(ctx.record, steps)


def _template(text: str) -> tuple[Getter, tuple[str, ...], tuple[tuple[str, bool], ...]]:
    """The template's renderer, the fields its placeholders read (not $variables), and its
    parts: (literal text, False) or (placeholder name, True)."""
    parts: list[tuple[str, Getter | None]] = []
    position = 0
    for match in _TEMPLATE_PART.finditer(text):
        parts.append((text[position : match.start()], None))
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append((token[0], None))
        elif match.group(1) is None:
            raise ValueError(f"unbalanced {token!r} in template {text!r}: write '{token * 2}'")
        else:
            name = match.group(1).strip()
            if not name:
                raise ValueError(f"empty placeholder '{{}}' in template {text!r}: name a field")
            getter = _variable(name) if name.startswith("$") else _field(name)
            parts.append((name, getter))
        position = match.end()
    parts.append((text[position:], None))
    frozen = tuple((text_, getter) for text_, getter in parts if text_ or getter)

    def render(ctx: Context) -> str:
        out = []
        for text_, getter in frozen:
            if getter is None:
                out.append(text_)
                continue
            value = getter(ctx)
            if value is None:
                raise StepFailure(
                    f"template field {text_} is empty: give the record a {text_}, "
                    "or build the value with a pipeline and 'default'"
                )
            out.append(as_text(value))
        return "".join(out)

    names = tuple(name for name, getter in frozen if getter is not None and name[:1] != "$")
    return render, names, tuple((text_, getter is not None) for text_, getter in frozen)
