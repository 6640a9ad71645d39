"""Filedrop options (pydantic v2) and declared field types with their Avro form and coercion.

`load_options(name, options, base_dir)` validates a connector's config section and resolves
relative paths against `base_dir`; any problem becomes one ConnectorError that names the
connector, each bad option and how to fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from connectors._kit.options import validate_options

__all__ = [
    "FieldType",
    "FiledropOptions",
    "ObjectOptions",
    "avro_name",
    "load_options",
    "truthy",
    "unique_names",
]

Format = Literal["csv", "jsonl"]

_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_AVRO_TYPES = {
    "string": "string",
    "long": "long",
    "int": "int",
    "double": "double",
    "boolean": "boolean",
}
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT32 = (-(2**31), 2**31 - 1)


@lru_cache(maxsize=4096)
def avro_name(text: str) -> str:
    """`text` made into a valid Avro name: invalid characters → '_', leading digit prefixed."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text.strip()) or "_"
    return name if not name[0].isdigit() else "_" + name


def unique_names(columns: Iterable[str]) -> list[str]:
    """`avro_name` of each column, with `_2`, `_3`... appended where two names collide."""
    seen: set[str] = set()
    names: list[str] = []
    for column in columns:
        base = name = avro_name(column)
        n = 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        names.append(name)
    return names


def truthy(value: Any) -> bool:
    """Whether a delete-marker value means "deleted": true/yes/1/... or a true JSON value."""
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


@dataclass(frozen=True, slots=True)
class FieldType:
    """A declared field type such as `long` or `double?` (nullable)."""

    avro: str
    nullable: bool

    @classmethod
    def parse(cls, spec: Any) -> FieldType:
        """Parse `type` or `type?`; raises ValueError listing the supported types."""
        if isinstance(spec, FieldType):
            return spec
        text = str(spec).strip()
        nullable = text.endswith("?")
        base = text.rstrip("?").strip().lower()
        if base not in _AVRO_TYPES:
            raise ValueError(
                f"unknown field type {spec!r}: use one of {', '.join(_AVRO_TYPES)}, "
                "with a '?' suffix for nullable (e.g. 'double?')"
            )
        return cls(_AVRO_TYPES[base], nullable)

    def avro_field(self, name: str) -> dict[str, Any]:
        """The Avro field for this type: nullable → ["null", T] with default null."""
        if self.nullable:
            return {"name": name, "type": ["null", self.avro], "default": None}
        return {"name": name, "type": self.avro}

    def coerce(self, value: Any) -> Any:
        """`value` converted to this type, or `value` unchanged when it does not convert.

        Empty strings become None for nullable types. Unconvertible values pass through so
        ingest's schema validation reports them with the field and the expected type.
        """
        return _COERCERS[self.avro, self.nullable](value)

    @property
    def coercer(self) -> Callable[[Any], Any]:
        """`coerce` as a plain function (for hot loops)."""
        return _COERCERS[self.avro, self.nullable]


def _to_string(value: Any) -> Any:
    if value.__class__ is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _to_integer(value: Any) -> int:
    if value.__class__ is str:
        if "_" in value:
            raise ValueError(f"not an integer: {value!r}")
        return int(value)
    if isinstance(value, bool):
        raise TypeError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"not an integer: {value!r}")


def _to_int32(value: Any) -> int:
    number = _to_integer(value)
    if not _INT32[0] <= number <= _INT32[1]:
        raise ValueError("out of the 32-bit range")
    return number


def _to_double(value: Any) -> float:
    if value.__class__ is str:
        if "_" in value:
            raise ValueError(f"not a number: {value!r}")
        return float(value)
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int | float):
        return float(value)
    raise ValueError(f"not a number: {value!r}")


def _to_boolean(value: Any) -> bool:
    if value.__class__ is str:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    elif isinstance(value, bool):
        return value
    elif isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"not a boolean: {value!r}")


def _make_coercer(convert: Callable[[Any], Any], nullable: bool) -> Callable[[Any], Any]:
    if convert is _to_string:

        def coerce_string(value: Any) -> Any:
            if value.__class__ is str:
                return None if nullable and value == "" else value
            return None if value is None else _to_string(value)

        return coerce_string

    def coerce(value: Any) -> Any:
        if value is None or (nullable and value == ""):
            return None
        try:
            return convert(value)
        except (ValueError, TypeError, OverflowError):
            return value

    return coerce


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "long": _to_integer,
    "int": _to_int32,
    "double": _to_double,
    "boolean": _to_boolean,
}
_COERCERS = {
    (avro, nullable): _make_coercer(convert, nullable)
    for avro, convert in _CONVERTERS.items()
    for nullable in (False, True)
}

FieldTypeSpec = Annotated[FieldType, BeforeValidator(FieldType.parse)]


class ObjectOptions(BaseModel):
    """One object type: the files that hold it and how to read them."""

    model_config = ConfigDict(extra="forbid")

    pattern: str
    format: Format | None = None
    key: str
    fields: dict[str, FieldTypeSpec] = {}
    delete_field: str | None = None
    snapshot: bool = False

    @model_validator(mode="after")
    def _check(self) -> ObjectOptions:
        if PurePath(self.pattern).is_absolute() or ".." in PurePath(self.pattern).parts:
            raise ValueError(
                f"pattern {self.pattern!r} must be a glob inside `directory` "
                "(relative, without '..'), e.g. 'time_*.csv'"
            )
        if self.format is None:
            suffix = PurePath(self.pattern).suffix.lower()
            if suffix not in _EXTENSIONS:
                raise ValueError(
                    f"cannot tell the file format from pattern {self.pattern!r}: "
                    "add `format: csv` or `format: jsonl`"
                )
            self.format = _EXTENSIONS[suffix]
        bad = [name for name in self.fields if not _NAME.match(name)]
        if bad:
            raise ValueError(
                f"field names {bad} are not valid Avro names: use letters, digits and '_', "
                "not starting with a digit"
            )
        if self.fields and self.key not in self.fields:
            raise ValueError(
                f"key {self.key!r} is not among the declared fields {sorted(self.fields)}: "
                "declare it (e.g. `" + self.key + ": string`) or fix `key`"
            )
        return self


class FiledropOptions(BaseModel):
    """A filedrop connector section (minus `type`); paths are absolute after load_options."""

    model_config = ConfigDict(extra="forbid")

    directory: Path | None = None
    objects: dict[str, ObjectOptions] = {}
    outbox: Path | None = None
    outbox_format: Format = "jsonl"

    @model_validator(mode="after")
    def _check(self) -> FiledropOptions:
        if self.directory is None and self.outbox is None:
            raise ValueError(
                "set `directory` (to read files another system drops) and/or `outbox` "
                "(to write files for it)"
            )
        if self.directory is not None and not self.objects:
            raise ValueError(
                "`directory` is set but `objects` is empty: add at least one object, e.g. "
                "`objects: {time_entries: {pattern: 'time_*.csv', key: id}}`"
            )
        if self.objects and self.directory is None:
            raise ValueError("`objects` needs `directory`: the folder the files are dropped in")
        return self


def load_options(name: str, options: Mapping[str, Any], base_dir: Path) -> FiledropOptions:
    """Validate `options`, resolve relative paths; raises ConnectorError saying what to fix."""
    opts = validate_options(FiledropOptions, name, "filedrop", options, model_at=_model_at)
    if opts.directory is not None and not opts.directory.is_absolute():
        opts.directory = (base_dir / opts.directory).resolve()
    if opts.outbox is not None and not opts.outbox.is_absolute():
        opts.outbox = (base_dir / opts.outbox).resolve()
    return opts


def _model_at(loc: Sequence[str]) -> type[BaseModel]:
    """The model whose options are allowed at `loc` (an object's section, or the top)."""
    return ObjectOptions if len(loc) == 3 and loc[0] == "objects" else FiledropOptions
