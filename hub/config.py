"""Settings: read once from the YAML config file, validated, then passed explicitly.

Values of the form `${NAME}` are replaced by the environment variable NAME, so secrets stay out
of the file. A connector's options (but its `type`) are replaced only when the connector is
built (`ConnectorSettings.options()`): commands that only read the store never need a source's
token. Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.errors import ConfigError
from hub.kafka_config import KafkaSettings

DEFAULT_CONFIG = "synchub.yaml"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET = re.compile(r"pass|secret|token|api_?key|credential|accounts", re.IGNORECASE)
"""Option names whose values (and everything below them) are secrets."""
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:([^/@\s]+)@")
"""The password of a URL's `user:password@` part, in any option (url, dsn, ...)."""


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    """Where the store is: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` or
    `postgresql://user@host:port/database` (`${NAME}` reads a password from the environment).
    Without it, the SQLite file at `path`."""
    backend: Literal["sqlite", "postgresql"] | None = None
    """Optional; when given it must agree with `url` (configs `synchub init` wrote have it)."""
    path: str = "./synchub.db"
    lease_seconds: float = Field(30.0, ge=1, le=3600)
    """How long a hub process's hold on a piece of work (a connector's capture, the planner, a
    target's writes) outlasts its last heartbeat: a process that dies hands its work over to
    another within this time (hub.store.leases)."""


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(1000, ge=1, le=100_000)
    max_field_bytes: int = Field(65_536, ge=16)
    # 50k heads ≈ 13 MB (≈ 264 B each, measured); 200k took 53 MB. At 1M streams they serve
    # ≈ 5 % vs 20 % of the updates from memory; bench/scale.py ingest/s unchanged (63.8k vs 58.7k)
    head_cache: int = Field(50_000, ge=0, description="stream heads kept in memory")
    reconcile_every: float = Field(3600.0, ge=0, description="seconds between reconciliations")
    reconcile_max_delete_ratio: float = Field(0.5, ge=0, le=1)


class OutboundSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_attempts: int = Field(5, ge=1)
    base_delay: float = Field(0.5, ge=0)
    max_delay: float = Field(30.0, ge=0)
    max_wait: float = Field(60.0, ge=0, description="longest a single sync pass waits to retry")
    rate_limit_per_s: float = Field(20.0, gt=0)
    batch_size: int = Field(100, ge=1)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(value: Any) -> Any:
    """A duration as seconds: a number, or text such as "90s", "30m", "4h", "2d", "1h 30m"."""
    if isinstance(value, str):
        parts = _DURATION.findall(value)
        if not parts or _DURATION.sub("", value).strip():
            raise ValueError(f"{value!r} is not a duration: write e.g. 30m, 4h, 2d or 1h 30m")
        return sum(float(n) * _UNIT[u] for n, u in parts)
    return value


class CutoffSettings(BaseModel):
    """The invoice cut-off (hub.cutoff): `days` working days before the month's last working
    day, at `at` (HH:MM) in the legal entity's time zone."""

    model_config = ConfigDict(extra="forbid")
    days: int = Field(2, ge=0, le=15)
    at: dt.time = dt.time(17, 0)


class IndicatorSettings(BaseModel):
    """What the business indicators (hub.indicators) need beyond the canonical state."""

    model_config = ConfigDict(extra="forbid")
    exchange_rates: dict[str, Decimal] = Field(
        default_factory=dict,
        description='"FROM/TO": how many TO one FROM buys, e.g. {"USD/EUR": 0.92}',
    )
    invoice_cutoff: CutoffSettings = CutoffSettings()
    won_states: list[str] = Field(default_factory=lambda: ["won"])
    """The Opportunity states that mean the deal is won (and must be provisioned)."""
    latency_window: float = Field(86400.0, gt=0, description="seconds (or 1h, 1d)")
    """Sync latency is measured over the writes applied in this window before the moment."""

    @field_validator("latency_window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Any:
        return _seconds(value)

    @model_validator(mode="after")
    def _pairs(self) -> IndicatorSettings:
        for pair, rate in self.exchange_rates.items():
            if not re.fullmatch(r"[A-Z]{3}/[A-Z]{3}", pair) or rate <= 0:
                raise ValueError(
                    f"exchange_rates: {pair!r}: {rate} — write a pair of currency codes and a "
                    'positive rate, e.g. "USD/EUR": 0.92 (one USD buys 0.92 EUR)'
                )
        return self


class ObjectiveSettings(BaseModel):
    """A service-level objective on a business deadline (hub.slo): `at_risk` before it is
    breached, the objective is at risk."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: Literal["time_posted_before_cutoff", "deal_provisioned_within", "exception_age"]
    within: float = Field(3600.0, gt=0, description="seconds (or 30m, 4h, 2d)")
    at_risk: float = Field(1800.0, ge=0, description="seconds before the deadline")
    exception_kind: str | None = None
    """For `exception_age`: only exceptions of this kind (quarantine, mapping, plan, write)."""

    @field_validator("within", "at_risk", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _seconds(value)


class AlertSettings(BaseModel):
    """Where alerts go besides the log: a webhook (JSON, HMAC-SHA256 signed with `secret`).
    `${NAME}`s stay unresolved until an alert is sent (reading the store never needs them)."""

    model_config = ConfigDict(extra="forbid")
    webhook: str | None = None
    secret: str | None = None
    timeout: float = Field(5.0, gt=0)
    max_attempts: int = Field(5, ge=1)
    base_delay: float = Field(1.0, ge=0)

    def resolved(self) -> tuple[str | None, str | None]:
        """(webhook URL, secret) with their `${NAME}`s replaced (ConfigError when not set)."""
        return _expand(self.webhook, "alerts.webhook"), _expand(self.secret, "alerts.secret")


class ConnectorSettings(BaseModel):
    """One connector section: `type` picks the entry point; the rest goes to the connector.

    The options keep their `${NAME}` references until `options()` is called, when the connector
    is built: a variable that is not set fails then, not when the config is read."""

    model_config = ConfigDict(extra="allow")
    type: str
    _where: str = PrivateAttr("connectors")
    """Where the section is, for messages: `connectors.<name>` (and the file, once loaded)."""

    def raw_options(self) -> dict[str, Any]:
        """The options as written, `${NAME}` references unresolved."""
        return dict(self.model_extra or {})

    def options(self) -> dict[str, Any]:
        """The options with every `${NAME}` replaced by its environment variable; raises
        ConfigError naming the variable (and where it is used) when one is not set."""
        return {k: _expand(v, f"{self._where}.{k}") for k, v in self.raw_options().items()}

    def _known_options(self) -> dict[str, Any]:
        """The options with the variables that are set replaced, the others as empty text."""
        return {k: _expand(v, k, missing="") for k, v in self.raw_options().items()}


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store: StoreSettings = StoreSettings()
    mapping: str | None = None
    canonical_schemas: str | None = None
    """A folder of the firm's own canonical schemas (hub.canonical_schemas); default
    `canonical/` beside the config file, when it exists."""
    connectors: dict[str, ConnectorSettings] = {}
    ingest: IngestSettings = IngestSettings()
    outbound: OutboundSettings = OutboundSettings()
    indicators: IndicatorSettings = IndicatorSettings()
    slos: list[ObjectiveSettings] = []
    alerts: AlertSettings = AlertSettings()
    kafka: KafkaSettings | None = None
    """Publish canonical changes to Kafka topics (hub.publish); none: not published."""
    poll_interval: float = Field(5.0, gt=0)
    base_dir: Path = Path(".")

    @model_validator(mode="after")
    def _name_connectors(self) -> Settings:
        for name, section in self.connectors.items():
            section._where = f"connectors.{name}"
        return self

    def secrets(self) -> set[str]:
        """Values of connector options whose names say they are secret (password, token,
        accounts: person → token, ...), at any depth, and passwords in URLs
        (`http://user:password@host`) in any option. A variable that is not set has no value
        to hide and does not fail here."""
        found: set[str] = set()

        def walk(value: Any, secret: bool = False) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(v, secret or bool(_SECRET.search(str(k))))
            elif isinstance(value, list):
                for v in value:
                    walk(v, secret)
            elif isinstance(value, str):
                if secret and len(value) >= 4:
                    found.add(value)
                found.update(m.group(1) for m in _URL_PASSWORD.finditer(value) if len(m[1]) >= 4)

        for section in self.connectors.values():
            walk(section._known_options())
        walk(_expand(self.alerts.secret, "alerts.secret", missing=""), secret=True)
        walk(self.store.url)
        if self.kafka is not None:
            walk(self.kafka_options("producer", missing=""))
            walk(self.kafka_options("consumer", missing=""))
            registry = self.kafka_options("schema_registry", missing="")
            walk({k: v for k, v in registry.items() if "auth" in k}, secret=True)
            walk(registry)
        return found

    def kafka_options(self, kind: str, *, missing: str | None = None) -> dict[str, Any]:
        """The extra librdkafka settings of `kafka.producer` or `kafka.consumer` (or the
        registry client's, `kafka.schema_registry`), `${NAME}` expanded from the environment
        (ConfigError names a missing variable)."""
        if self.kafka is None:
            return {}
        options = getattr(self.kafka, kind)
        return {
            k: _expand(v, f"kafka.{kind}.{k}", missing=missing) if isinstance(v, str) else v
            for k, v in options.items()
        }

    def redact(self, text: str) -> str:
        """`text` with every secret value, and the password of every URL, replaced by ***, for
        logs, events and messages."""
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, "***")
        return redact_url(text)

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def store_url(self) -> str:
        """The store's URL, `sqlite:///` + an absolute path or a `postgresql://` URL, with
        `${NAME}` expanded (it may hold a password: show `redact_url` of it)."""
        url = self.store.url
        if url is None:
            url = f"sqlite:///{self.store.path}"
        scheme = url.partition("://")[0]
        backend = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}
        if scheme not in backend:
            raise ConfigError(
                f"store.url {redact_url(url)!r}: use sqlite:///path/to/synchub.db or "
                "postgresql://user@host:5432/database"
            )
        if self.store.backend is not None and self.store.backend != backend[scheme]:
            raise ConfigError(
                f"store.backend is {self.store.backend} but store.url is a {backend[scheme]} URL:"
                " drop store.backend (the URL says it)"
            )
        if scheme == "sqlite":
            return f"sqlite:///{self.resolve(url.removeprefix('sqlite:///'))}"
        return url

    @property
    def store_path(self) -> Path:
        """The SQLite file of the store (ConfigError on a PostgreSQL store)."""
        url = self.store_url
        if not url.startswith("sqlite:///"):
            raise ConfigError(f"the store is not an SQLite file but {redact_url(url)}")
        return Path(url.removeprefix("sqlite:///"))

    @property
    def mapping_path(self) -> Path | None:
        return None if self.mapping is None else self.resolve(self.mapping)

    @property
    def canonical_schemas_path(self) -> Path | None:
        """The folder of the firm's canonical schemas: `canonical_schemas`, else `canonical/`
        beside the config file if there is one (None: the built-in schemas only)."""
        if self.canonical_schemas is not None:
            return self.resolve(self.canonical_schemas)
        default = self.base_dir / "canonical"
        return default if default.is_dir() else None


def redact_url(text: str) -> str:
    """`text` with the password of every URL in it (`scheme://user:password@`) as ***."""
    return _URL_PASSWORD.sub(lambda m: m[0][: m.start(1) - m.start()] + "***@", text)


def _expand(value: Any, where: str, *, missing: str | None = None) -> Any:
    """`value` with every `${NAME}` in its strings replaced by the environment variable NAME;
    one that is not set raises ConfigError naming it and `where`, or becomes `missing`."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in os.environ:
                return os.environ[name]
            if missing is not None:
                return missing
            raise ConfigError(
                f"{where} refers to ${{{name}}}, but the environment variable {name} is not "
                f"set: set it (e.g. `export {name}=...`) and run the command again"
            )

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", missing=missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", missing=missing) for i, v in enumerate(value)]
    return value


def _expand_settings(data: dict[str, Any], where: str) -> dict[str, Any]:
    """`data` with its `${NAME}`s replaced now, except in connector options (but `type`):
    those are replaced when the connector is built (ConnectorSettings.options), and in
    `alerts` (when an alert is sent: AlertSettings.resolved)."""
    expanded = {
        k: _expand(v, f"{where}: {k}") if k != "alerts" else v
        for k, v in data.items()
        if k != "connectors"
    }
    connectors = data.get("connectors")
    if "connectors" in data:
        if isinstance(connectors, dict):
            connectors = {
                name: (
                    {
                        **section,
                        "type": _expand(section["type"], f"{where}: connectors.{name}.type"),
                    }
                    if isinstance(section, dict) and "type" in section
                    else section
                )
                for name, section in connectors.items()
            }
        expanded["connectors"] = connectors
    return expanded


def load_settings(path: Path | str) -> Settings:
    """Read and validate a config file; raises ConfigError saying what is wrong and where."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"config file {path} does not exist: create one with `synchub init --config {path}`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text ({e.reason}): save it as UTF-8") from e
    except OSError as e:
        raise ConfigError(
            f"cannot read config file {path}: {e.strerror or e}: pass the YAML file with --config"
        ) from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings at the top level")
    data = _expand_settings(data, str(path))
    try:
        settings = Settings.model_validate({**data, "base_dir": path.resolve().parent})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{path}: {problems}") from e
    for name, section in settings.connectors.items():
        section._where = f"{path}: connectors.{name}"
    return settings


EXAMPLE_CONFIG = """\
# synchub configuration. Relative paths are relative to this file; ${NAME} reads an
# environment variable (use it for secrets: they never reach logs or events).

store:
  backend: sqlite            # the embedded default: one file, no server
  path: ./synchub.db
  # url: postgresql://synchub:${SYNCHUB_PG_PASSWORD}@db:5432/synchub   (instead of the two
  #   lines above: several hub processes, BI views; docs/postgresql.md)
  # lease_seconds: 30        # a dead hub process's work goes to another within this time

# The mapping document: source objects -> canonical entities -> target objects.
# Deployed as a new version (an event) whenever its content changes. See docs/mappings.md.
mapping: ./mapping.yaml

# Your own canonical entities and fields: <folder>/<entity>/v<N>.avsc, deployed with the
# mapping. Default: ./canonical if it exists. See docs/events-and-schemas.md.
# canonical_schemas: ./canonical

connectors:
  legacy_erp:                # a name of your choice; events and checkpoints use it
    type: filedrop           # connector type (entry point in the synchub.connectors group)
    directory: ./inbox       # the other system drops export files here
    objects:
      time_entries:
        pattern: "time_*.csv"
        key: id
        fields: {id: string, person: string, project: string, day: string, minutes: long}
    outbox: ./outbox         # synchub writes import files here (atomically)

ingest:
  batch_size: 1000           # changes appended per transaction (with the checkpoint)
  max_field_bytes: 65536     # longer values are quarantined
  head_cache: 50000          # stream heads kept in memory (for de-duplication)
  reconcile_every: 3600      # seconds between hard-delete reconciliations
  reconcile_max_delete_ratio: 0.5  # more deletes than this share: not recorded, an error
                             #   (`synchub sync --once --reconcile-force` records them)

outbound:
  max_attempts: 5            # then the write becomes an exception
  base_delay: 0.5            # exponential backoff with jitter, honouring Retry-After
  max_delay: 30
  max_wait: 60               # longest `synchub sync --once` waits for a retry within its pass
  rate_limit_per_s: 20       # per target
  batch_size: 100            # writes sent per batch

poll_interval: 5             # seconds between passes of `synchub run`
"""
