"""A rule's result: the mapped record, and the checks on what an id or a condition gave."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.errors import MappingError
from hub.mapping.pipeline import Pipeline
from hub.mapping.runtime import StepFailure, as_text, show

__all__ = ["MappedRecord", "natural_id_of", "truthy"]


@dataclass(frozen=True, slots=True)
class MappedRecord:
    """A source record as a canonical entity: its natural id and mapped fields."""

    entity: str
    natural_id: str
    fields: dict[str, Any]

    @property
    def canonical_id(self) -> str:
        """`Entity/natural_id`."""
        return f"{self.entity}/{self.natural_id}"


def natural_id_of(value: Any, pipeline: Pipeline) -> str:
    """`value` as a natural id (text); MappingError when it is empty or has no text form."""
    if value is None or (isinstance(value, str) and not value):
        raise MappingError(
            f"field id: the id pipeline gave no value ({show(value)}): every record needs a "
            f"natural id; build it from fields that are always set (rule: {pipeline.text})",
            field="id",
            rule=pipeline.text,
            value=value,
        )
    try:
        return as_text(value)
    except StepFailure as exc:
        raise MappingError(
            f"field id: {exc.message} (rule: {pipeline.text})",
            field="id",
            rule=pipeline.text,
            value=value,
        ) from None


def truthy(value: Any, pipeline: Pipeline, field: str) -> bool:
    """bool(value) for a `delete`/`when` pipeline; MappingError when it has none."""
    try:
        return bool(value)
    except Exception as exc:
        raise MappingError(
            f"field {field}: cannot tell whether {show(value)} is true ({exc}): end the "
            f"pipeline with 'bool' (rule: {pipeline.text})",
            field=field,
            rule=pipeline.text,
            value=value,
        ) from exc
