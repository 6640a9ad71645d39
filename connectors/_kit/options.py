"""Validating a connector's config section with pydantic, and saying what to fix."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from hub.spi import ConnectorError

__all__ = ["validate_options"]

M = TypeVar("M", bound=BaseModel)
_NO_INPUT_KINDS = ("value_error", "model_type", "dict_type")


def validate_options(
    model: type[M],
    name: str,
    kind: str,
    options: Mapping[str, Any],
    *,
    secrets: Collection[str] = (),
    model_at: Callable[[Sequence[str]], type[BaseModel]] | None = None,
) -> M:
    """`options` as a `model`, or one ConnectorError naming connector `name` (of type `kind`),
    each bad option and how to fix it. Values of the options in `secrets` are never echoed;
    `model_at(loc)` names the model of a nested section (for its allowed options)."""
    try:
        return model.model_validate(dict(options))
    except PydanticValidationError as e:
        problems = "\n".join(
            f"  - {_describe(err, secrets, model_at or (lambda _loc: model))}" for err in e.errors()
        )
        raise ConnectorError(
            f"connector {name!r} ({kind}): invalid configuration in its `connectors.{name}` "
            f"section:\n{problems}"
        ) from None


def _describe(
    err: Mapping[str, Any],
    secrets: Collection[str],
    model_at: Callable[[Sequence[str]], type[BaseModel]],
) -> str:
    """One pydantic error as `option: what is wrong`."""
    loc = [str(part) for part in err["loc"]]
    where = ".".join(loc)
    kind = err["type"]
    message = str(err["msg"]).removeprefix("Value error, ")
    if not loc:  # a section-wide rule: its message names the options
        return message
    if kind == "extra_forbidden":
        allowed = ", ".join(model_at(loc).model_fields)
        return f"{where}: unknown option; the options here are: {allowed}"
    if kind == "missing":
        return f"{where}: required option is missing"
    if loc[0] not in secrets and "input" in err and kind not in _NO_INPUT_KINDS:
        return f"{where}: {message} (got {err['input']!r})"
    return f"{where}: {message}"
