"""Tryton connector options (pydantic v2).

`load_options(name, options)` validates a `connectors.<name>` section; any problem becomes one
ConnectorError naming the connector, each bad option and how to fix it. The password is a
SecretStr: it never appears in a repr, a log line or an error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors._kit.options import validate_options

__all__ = ["TrytonOptions", "load_options"]


class TrytonOptions(BaseModel):
    """A `type: tryton` section (minus `type`)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    database: str = Field(min_length=1)
    user: str = Field("admin", min_length=1)
    password: SecretStr
    lag: float = Field(60.0, ge=0, description="overlap window in seconds")
    timeout: float = Field(30.0, gt=0, description="seconds per RPC call")
    rate_limit: float | None = Field(
        None, gt=0, description="RPC calls per second at most (a token bucket); none: no limit"
    )
    page_size: int = Field(500, ge=1, le=10_000, description="records per search_read")
    profile: Literal["erp", "crm"] = Field(
        "erp",
        description="the kind of database: its objects are read by default (erp: parties, "
        "employees, projects, tasks, timesheet lines, invoices; crm: parties, contacts, "
        "employees, opportunities)",
    )
    objects: list[str] | None = Field(
        None, description="source objects to read; default: the profile's"
    )
    every: dict[str, float] = Field(
        default_factory=dict,
        description="seconds between polls of these objects, e.g. {rates: 3600}; the others "
        "are polled every pass (each start polls every object once)",
    )

    @field_validator("every")
    @classmethod
    def _positive(cls, every: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in every.items() if not v > 0}
        if bad:
            raise ValueError(f"seconds must be more than 0, got {bad}")
        return every

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                "must be the server's base URL, e.g. http://127.0.0.1:8000 (without the database)"
            )
        return url.rstrip("/")


def load_options(name: str, options: Mapping[str, Any]) -> TrytonOptions:
    """Validate `options`; raises ConnectorError saying what to fix (never echoing secrets)."""
    return validate_options(TrytonOptions, name, "tryton", options, secrets=("password",))
