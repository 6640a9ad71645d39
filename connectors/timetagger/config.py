"""TimeTagger connector options (pydantic v2).

`load_options(name, options)` validates a `connectors.<name>` section; any problem becomes one
ConnectorError naming the connector, each bad option and how to fix it. The token is a
SecretStr: it never shows in a repr or an error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError

from hub.spi import ConnectorError

__all__ = ["TimeTaggerOptions", "load_options"]


class TimeTaggerOptions(BaseModel):
    """A timetagger connector section (minus `type`)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    """Base URL of the TimeTagger app, e.g. http://127.0.0.1:8082/timetagger."""
    token: SecretStr
    """API token (TimeTagger → Account → API token)."""
    lag: float = Field(default=10.0, ge=0)
    """Overlap window in seconds re-read on every poll (late commits inside it are caught)."""
    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for one HTTP answer."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                "must start with http:// or https://, e.g. http://127.0.0.1:8082/timetagger"
            )
        if url.endswith("/api/v2"):
            raise ValueError("give the base URL without /api/v2 (e.g. .../timetagger)")
        return url

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError(
                "is empty: set it to an API token, e.g. `token: ${TIMETAGGER_TOKEN}` "
                "(is the environment variable set?)"
            )
        return value


def load_options(name: str, options: Mapping[str, Any]) -> TimeTaggerOptions:
    """Validate `options`; raises ConnectorError saying what to fix."""
    try:
        return TimeTaggerOptions.model_validate(dict(options))
    except PydanticValidationError as e:
        problems = "\n".join(f"  - {_describe(err)}" for err in e.errors())
        raise ConnectorError(
            f"connector {name!r} (timetagger): invalid configuration in its `connectors.{name}` "
            f"section:\n{problems}"
        ) from None


def _describe(err: Mapping[str, Any]) -> str:
    """One pydantic error as `option: what is wrong`; never echoes the token."""
    loc = [str(part) for part in err["loc"]]
    where = ".".join(loc) or "(section)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(TimeTaggerOptions.model_fields)
        return f"{where}: unknown option; the options here are: {allowed}"
    if kind == "missing":
        return f"{where}: required option is missing"
    message = str(err["msg"]).removeprefix("Value error, ")
    if loc[:1] != ["token"] and "input" in err and kind != "value_error":
        return f"{where}: {message} (got {err['input']!r})"
    return f"{where}: {message}"
