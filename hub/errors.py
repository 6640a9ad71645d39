"""One exception tree for the whole hub.

    SyncHubError
    ├── ConfigError                 the config file is missing, malformed or inconsistent
    ├── StoreError                  the event store refused or failed an operation
    │   ├── ConcurrencyError        another writer appended to the same stream first
    │   └── UnknownSchemaError      a payload names a schema fingerprint the store never saw
    ├── SchemaError                 a record or schema does not fit the rules
    │   ├── ValidationError         one record does not match its object's schema
    │   └── IncompatibleSchemaError a discovered schema breaks backward compatibility
    ├── MappingError                a mapping rule could not be applied to a value
    ├── MappingSpecError            a mapping document is malformed (caught at deploy)
    ├── ConnectorError              a connector failed (I/O, protocol, bad configuration)
    └── ProjectionError             a projection could not apply an event

Every message says what happened, where, and how to fix it.
"""

from __future__ import annotations


class SyncHubError(Exception):
    """Base of every error synchub raises on purpose."""


class ConfigError(SyncHubError):
    """The configuration is missing, malformed or inconsistent."""


class StoreError(SyncHubError):
    """The event store refused or failed an operation."""


class StoreUnavailable(StoreError):
    """The store's database cannot be reached now (a server restarting, a network cut): the
    operation did nothing; it may succeed when tried again later."""


class ConcurrencyError(StoreError):
    """An append lost a race: a stream version it expected was taken."""


class UnknownSchemaError(StoreError):
    """A payload names a schema fingerprint that is not in the store."""


class SchemaError(SyncHubError):
    """A record or a schema does not fit the rules."""


class ValidationError(SchemaError):
    """One record does not match its object's schema."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class IncompatibleSchemaError(SchemaError):
    """A newly discovered schema cannot read data written with the previous version."""


class MappingError(SyncHubError):
    """A mapping rule could not be applied to a value."""

    def __init__(self, message: str, *, field: str, rule: str, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.value = value


class MappingSpecError(SyncHubError):
    """A mapping document is malformed; raised when it is loaded, before it is deployed."""


class ConnectorError(SyncHubError):
    """A connector failed: I/O, protocol, or its own configuration."""


class ProjectionError(SyncHubError):
    """A projection could not apply an event."""
