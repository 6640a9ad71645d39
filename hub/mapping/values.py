"""Value and identity steps: default, required, map, link, target_key, canonical."""

from __future__ import annotations

import copy
from typing import Any

from hub.mapping.runtime import Context, StepFailure, as_text, show

Args = tuple[Any, ...]

_MISSING = object()


def default(value: Any, args: Args, ctx: Context) -> Any:
    """args[0] when the value is None or ""; the value otherwise. Handles None."""
    if value is None or (isinstance(value, str) and not value):
        return _fresh(args[0])
    return value


def required(value: Any, args: Args, ctx: Context) -> Any:
    """The value unchanged; an error when it is None or "". Handles None."""
    if value is None or (isinstance(value, str) and not value):
        raise StepFailure(
            f"needs a value but got {show(value)}: fill it in at the source, "
            "or use 'default VALUE' instead of 'required'"
        )
    return value


def map_(value: Any, args: Args, ctx: Context) -> Any:
    """args[0][text of value]; args[1] (if given) for values not in the map, else an error."""
    table: dict[str, Any] = args[0]
    found = table.get(as_text(value), _MISSING)
    if found is _MISSING:
        if len(args) < 2:
            known = ", ".join(repr(key) for key in list(table)[:10])
            raise StepFailure(
                f"has no entry for {show(value)} (known: {known}): add it to the map, "
                "or give a default after the map (e.g. map {...} null)"
            )
        found = args[1]
    return _fresh(found)


def link(value: Any, args: Args, ctx: Context) -> str:
    """The canonical id of the entity args[0] linked to source record args[1]/args[2]/value."""
    entity, system, object_ = args
    key = as_text(value)
    found = ctx.lookup.canonical_id(entity, system, object_, key)
    if found is None:
        raise StepFailure(
            f"no {entity} is linked to {system}/{object_}/{key}: capture it first or fix the link",
            missing=(entity, system, object_, key),
        )
    return found


def target_key(value: Any, args: Args, ctx: Context) -> str:
    """The key system args[0] uses for the canonical id in value: of its record of object
    args[1] when given (an entity can have records of several objects in one system, e.g. a
    CRM party and a billing note), else of its first record by object and key."""
    canonical_id = as_text(value)
    if len(args) > 1:
        found = ctx.lookup.object_key(args[0], args[1], canonical_id)
        where = f"{args[0]}/{args[1]}"
    else:
        found = ctx.lookup.target_key(args[0], canonical_id)
        where = args[0]
    if found is None:
        raise StepFailure(
            f"{where} has no record for {canonical_id} yet: write {canonical_id} to "
            f"{where} first (a target rule for its entity), or fix the link",
            missing=(args[0], canonical_id),
        )
    return found


def canonical(value: Any, args: Args, ctx: Context) -> str:
    """The canonical id 'ENTITY/value' for entity args[0]."""
    return f"{args[0]}/{as_text(value)}"


def id_part(value: Any, args: Args, ctx: Context) -> Any:
    """The id in a canonical id, without its entity (`Person/alice` → `alice`); of each one,
    for a list. A value without an entity is an error."""
    if isinstance(value, list):
        return [id_part(v, args, ctx) for v in value]
    text_ = as_text(value)
    entity, slash, local = text_.partition("/")
    if not slash or not entity or not local:
        raise StepFailure(f"{show(value)} is not a canonical id (ENTITY/id)")
    return local


def _fresh(value: Any) -> Any:
    """A copy of a mutable constant, so no caller can change the mapping's own data."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value
