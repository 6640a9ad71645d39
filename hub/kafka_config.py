"""The `kafka:` section of the configuration: where canonical changes are published
(hub.publish) and how the topics are made."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["KafkaSettings"]


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bootstrap_servers: str
    """host:port[,host:port…] of the Kafka cluster."""
    topic_prefix: str = "canonical."
    """Change topics are `<prefix><entity>` (`canonical.time_entry`), the compacted latest
    state `<prefix><entity>.state`."""
    partitions: int = Field(6, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=16)
    """Made with these when missing; existing topics are used as they are."""
    transactional_id: str = "synchub-publisher"
    """One per store: a publisher that takes over fences the one before (Kafka's transactions)."""
    checkpoint_topic: str = "synchub.published"
    """Compacted: the store position each transaction published up to, written in it."""
    batch: int = Field(5000, ge=1, le=1_000_000)
    """Changes per Kafka transaction."""
    outbound_targets: list[str] = []
    """Targets whose writes `synchub worker outbound --target NAME` processes do, as a Kafka
    consumer group; `synchub run` plans their writes and publishes them to
    `<outbound_prefix><target>`, and does not write to them itself."""
    outbound_prefix: str = "synchub.outbound."
    writes_topic: str | None = "synchub.writes"
    """Compacted: each target record's latest write outcome (applied, failed, resolved,
    ignored), keyed `<target>/<object>/<canonical id>`, so consumers know what is posted;
    none: not published."""
    producer: dict[str, str | int | float | bool] = {}
    """Extra librdkafka producer settings (security.protocol, sasl.*, compression.type…)."""
    schema_registry: dict[str, str | int | float | bool] = {}
    """A Confluent-compatible schema registry's client settings (`url`, `basic.auth.user.info`,
    `ssl.ca.location`…, `${NAME}` read from the environment): with a `url`, the topics' values
    are in the Confluent wire format, their schemas registered under `<topic>-value`
    (hub.publish.registry); without, Avro single-object encoding."""
    consumer: dict[str, str | int | float | bool] = {}
    """Extra librdkafka consumer settings for `synchub subscribe` and the checkpoint reads."""
