"""The mapping document: reading it (YAML or JSON), checking its shape, and its digest.

Shape errors become one MappingSpecError listing each bad item by its path in the document
(`sources[2].fields.minutes`) with how to fix it. Meaning (entities, steps, duplicates) is
checked when the document is compiled, in `hub.mapping.compiler`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.errors import MappingSpecError

__all__ = [
    "CheckDoc",
    "EntityDoc",
    "MappingDoc",
    "SourceDoc",
    "TargetDoc",
    "canonical_json",
    "digest_of",
    "format_path",
    "parse_document",
    "read_document",
    "summarize",
]

Name = Annotated[str, StringConstraints(min_length=1)]
Rule = Annotated[str, StringConstraints(min_length=1)]


class _Doc(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class EntityDoc(_Doc):
    """Ownership of one entity: the system that owns it, and per-field owner overrides."""

    owner: Name | None = None
    fields: dict[Name, Name] = Field(default_factory=dict)


class SourceDoc(_Doc):
    """Inbound rule: one source object → one canonical entity."""

    system: Name
    object: Name
    entity: Name
    id: Rule
    fields: dict[Name, Rule] = Field(default_factory=dict)
    delete: Rule | None = None


class FeedbackDoc(_Doc):
    """Where to mark an entity whose write a `require` check refused: a tag on the record of
    `system`/`object` the entity came from (e.g. `#sync-error` on a time entry)."""

    system: Name
    object: Name
    tag: Name


class CheckDoc(_Doc):
    """A `require` check that applies only to some records: `check` must hold when `when` does
    (e.g. a working-time cap of one legal entity)."""

    when: Rule
    check: Rule


class TargetDoc(_Doc):
    """Outbound rule: one canonical entity → one target object."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    system: Name
    object: Name
    entity: Name
    let: dict[Name, Rule] = Field(default_factory=dict, alias="with")
    """Named values computed first, in order, readable as fields by the later pipelines."""
    when: Rule | None = None
    unwanted: Literal["delete", "keep", "exception"] = "delete"
    match: list[Annotated[list[Name], Field(min_length=1)]] = Field(default_factory=list)
    require: dict[str, Rule | CheckDoc] = Field(default_factory=dict)
    feedback: FeedbackDoc | None = None
    fields: Annotated[dict[Name, Rule], Field(min_length=1)]


class ValuationDoc(_Doc):
    """What an entity is worth: its `hours` at the rate `rate` finds (the canonical id of a
    rate entity, e.g. the RateCard in force on the entry's day), whose `rate_field` and
    `currency_field` give the hourly rate and its currency. A read-side rule: it writes
    nothing (`synchub valuation`, `synchub history`)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    entity: Name
    let: dict[Name, Rule] = Field(default_factory=dict, alias="with")
    when: Rule | None = None
    hours: Rule
    rate: Rule
    rate_field: Name = "hourly_rate"
    currency_field: Name = "currency"


class MappingDoc(_Doc):
    """The whole document."""

    name: Name
    description: str | None = None
    entities: dict[Name, EntityDoc] = Field(default_factory=dict)
    sources: list[SourceDoc] = Field(default_factory=list)
    targets: list[TargetDoc] = Field(default_factory=list)
    valuations: list[ValuationDoc] = Field(default_factory=list)


def read_document(path: Path) -> Any:
    """The document in `path`: YAML for .yaml/.yml, JSON for .json."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise MappingSpecError(f"{path}: a mapping file must end in .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingSpecError(
            f"{path}: cannot read the mapping file ({exc}): check the mapping path in the config"
        ) from None
    try:
        if suffix == ".json":
            return json.loads(text, object_pairs_hook=_unique_json_object)
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except _DuplicateKey as exc:
        raise MappingSpecError(f"{path}: {exc}") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise MappingSpecError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from None


class _DuplicateKey(Exception):
    """The same key twice in one mapping: YAML and JSON would silently keep the last."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` brings keys that may be overridden
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                seen = first.get(key)
            except TypeError:  # an unhashable key: the constructor reports it
                continue
            if seen is not None:
                raise _DuplicateKey(
                    f"line {line}: key {key!r} is given twice in one mapping (first at line "
                    f"{seen}): YAML would keep only the last; remove or rename one"
                )
            first[key] = line
        return super().construct_mapping(node, deep)


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(
                f"key {key!r} is given twice in one object: JSON would keep only the last; "
                "remove or rename one"
            )
        result[key] = value
    return result


def parse_document(spec: Any) -> MappingDoc:
    """The document checked against its shape; MappingSpecError lists every bad item."""
    if not isinstance(spec, dict):
        raise MappingSpecError(
            "the mapping document must be a mapping with the keys name, entities, sources and "
            f"targets, got {type(spec).__name__}"
        )
    try:
        return MappingDoc.model_validate(spec)
    except pydantic.ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
    name = spec.get("name")
    raise MappingSpecError(summarize(name if isinstance(name, str) else None, problems))


def canonical_json(spec: Any) -> str:
    """The document as compact JSON with sorted keys: the same text for the same content."""
    return json.dumps(
        spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def digest_of(spec: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of the document."""
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def format_path(loc: tuple[Any, ...]) -> str:
    """`('sources', 2, 'fields', 'minutes')` → `sources[2].fields.minutes`."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def summarize(name: str | None, problems: list[str]) -> str:
    """One message for every problem found in a document, one problem per line."""
    title = f"mapping {name!r}" if name else "the mapping"
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    return f"{title} is invalid ({count}):\n" + "\n".join(f"  {p}" for p in problems)


_FIXES = {
    "string_type": "must be text",
    "string_too_short": "must not be empty",
    "dict_type": "must be a mapping of name: value",
    "list_type": "must be a list (items starting with '-')",
    "model_type": "must be a mapping of settings",
    "too_short": "must not be empty",
}


def _describe(error: Any) -> str:
    loc, kind = tuple(error["loc"]), error["type"]
    if "[key]" in loc:
        at = loc.index("[key]")
        return (
            f"{format_path(loc[: at - 1])}.{loc[at - 1]}: names must be text, "
            f"got {_short(loc[at - 1])}: quote it"
        )
    path = format_path(loc)
    if kind == "missing":
        return f"{path}: is required: add it"
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(loc[:-1]))
        return f"{path}: unknown key: remove it or fix its spelling (allowed here: {allowed})"
    fix = _FIXES.get(kind, error["msg"])
    if kind == "string_type" and _is_rule(loc):
        fix += (
            ' (a pipeline like "amount | decimal 2"; for a constant quote it inside: '
            '"\'EUR\'", or write "true", "0")'
        )
    return f"{path}: {fix}, got {_short(error.get('input'))}"


def _is_rule(loc: tuple[Any, ...]) -> bool:
    if loc[:1] not in (("sources",), ("targets",)):
        return False
    return (len(loc) == 4 and loc[2] in ("fields", "require", "with")) or loc[-1] in (
        "id",
        "when",
        "check",
        "delete",
    )


def _allowed_keys(parent: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = MappingDoc
    if parent[:1] == ("sources",):
        model = SourceDoc
    elif parent[:1] == ("targets",):
        model = TargetDoc
    elif parent[:1] == ("entities",):
        model = EntityDoc
    return [f.alias or name for name, f in model.model_fields.items()]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
