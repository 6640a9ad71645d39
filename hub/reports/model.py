"""What a report is, whatever its format: a title, the moment and the mapping version it
reflects, a few summary lines, and sections — each a table (typed columns, rows, a totals row)
and, where a picture says more, a bar chart."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = ["Chart", "Column", "Report", "Section", "typed"]

ColumnType = Literal["text", "int", "decimal", "date", "datetime"]


@dataclass(frozen=True)
class Column:
    name: str
    """The CSV header and the key of the rows' values."""
    label: str
    type: ColumnType = "text"


@dataclass(frozen=True)
class Chart:
    """Horizontal bars: one per label, its value in `unit`."""

    title: str
    labels: list[str]
    values: list[float]
    unit: str = ""


@dataclass
class Section:
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    totals: dict[str, Any] | None = None
    chart: Chart | None = None
    note: str = ""
    """Said under the table (what the figures mean, what to do)."""


@dataclass
class Report:
    name: str
    title: str
    as_of: str
    """The moment the report reflects (ISO 8601)."""
    position: int
    mapping_version: int | None
    generated_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    period: tuple[str, str] | None = None
    """(from, to) for the reports of a period."""
    summary: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    csv_section: int = 0
    """The section `--format csv` writes (the record-level one)."""


def typed(value: Any, type_: ColumnType) -> str:
    """A cell as text in the one form its column type promises (CSV and HTML alike)."""
    if value is None:
        return ""
    if type_ == "int":
        return str(int(value))
    if type_ == "decimal":
        return f"{Decimal(str(value)):f}"
    if type_ == "date":
        return str(value)[:10]
    if type_ == "datetime":
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        return when.isoformat(timespec="seconds")
    return str(value)
