"""TimeTagger connector options (pydantic v2).

`load_options(name, options)` validates a `connectors.<name>` section; any problem becomes one
ConnectorError naming the connector, each bad option and how to fix it. Exactly one of `token`
(one account, optionally named by `person`) and `accounts` (person → token) is given. Tokens
are SecretStr: they never show in a repr or an error message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors._kit.options import validate_options

__all__ = ["TimeTaggerOptions", "load_options"]

_PERSON = re.compile(r"[^/\s]+\Z")
_SECRET_OPTIONS = ("token", "accounts")


class TimeTaggerOptions(BaseModel):
    """A timetagger connector section (minus `type`)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    """Base URL of the TimeTagger app, e.g. http://127.0.0.1:8082/timetagger."""
    token: SecretStr | None = None
    """API token of the one account (TimeTagger → Account → API token)."""
    person: str | None = None
    """Whose account `token` is: the `person` field of its records (null without it)."""
    accounts: dict[str, SecretStr] | None = None
    """Several accounts: person → API token; record keys become `<person>/<record key>`."""
    tags_from: str | None = None
    """With `accounts`: the person whose account tag metadata is read from (default: the one the
    checkpoint read it from, else the first listed)."""
    lag: float = Field(default=10.0, ge=0)
    """Overlap window in seconds re-read on every poll (late commits inside it are caught)."""
    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for one HTTP answer."""
    rate_limit: float | None = Field(default=None, gt=0)
    """HTTP requests per second at most, per account (a token bucket); None: no limit."""

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
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(
                "is empty: set it to an API token, e.g. `token: ${TIMETAGGER_TOKEN}` "
                "(is the environment variable set?)"
            )
        return value

    @field_validator("person")
    @classmethod
    def _person(cls, value: str | None) -> str | None:
        if value is not None:
            _check_person(value)
        return value

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, value: dict[str, SecretStr] | None) -> dict[str, SecretStr] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("is empty: list person: token pairs, e.g. `alice: ${TT_TOKEN_ALICE}`")
        for person, token in value.items():
            _check_person(person)
            if not token.get_secret_value().strip():
                raise ValueError(
                    f"the token of {person!r} is empty: set it to that person's API token, "
                    "e.g. `alice: ${TT_TOKEN_ALICE}` (is the environment variable set?)"
                )
        return value

    @model_validator(mode="after")
    def _token_or_accounts(self) -> TimeTaggerOptions:
        """Section-wide rules; each message starts with the option it is about."""
        if self.token is None and self.accounts is None:
            raise ValueError(
                "token: required option is missing (or, for several accounts, give `accounts`: "
                "person → token)"
            )
        if self.token is not None and self.accounts is not None:
            raise ValueError(
                "token, accounts: give only one of them (`token` for one account, `accounts` "
                "for several)"
            )
        if self.accounts is not None and self.person is not None:
            raise ValueError(
                "person: goes with `token` only; with `accounts` each record's person is the "
                "name of its account"
            )
        if self.tags_from is not None and self.tags_from not in (self.accounts or {}):
            people = sorted(self.accounts) if self.accounts else None
            raise ValueError(
                f"tags_from: {self.tags_from!r} is not one of `accounts` ({people}): name the "
                "person whose account holds the tag metadata"
                if people
                else "tags_from: goes with `accounts` only (with `token` there is one account)"
            )
        return self


def _check_person(person: str) -> None:
    if not _PERSON.match(person):
        raise ValueError(
            f"{person!r} is not a usable person name: it prefixes record keys "
            "(`<person>/<record key>`), so use no '/' and no spaces, e.g. 'alice'"
        )


def load_options(name: str, options: Mapping[str, Any]) -> TimeTaggerOptions:
    """Validate `options`; raises ConnectorError saying what to fix (never echoing a token)."""
    return validate_options(TimeTaggerOptions, name, "timetagger", options, secrets=_SECRET_OPTIONS)
