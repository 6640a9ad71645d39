"""Publishing as part of a hub process (`synchub run`, `synchub publish`): the Publisher for
the canonical schemas deployed now, made again after a failure or a change of deployment."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException

from hub.canonical_schemas import BUILTIN, CanonicalSchemas
from hub.config import Settings
from hub.errors import SyncHubError
from hub.publish.publisher import Progress, Publisher, PublishReport
from hub.publish.registry import RegistryError
from hub.publish.topics import TopicSchemas
from hub.store.base import EventStore
from projections.mappings import active_canonical

__all__ = ["PublishFailed", "Publishing"]

log = logging.getLogger("synchub.publish")


class PublishFailed(SyncHubError):
    """Publishing stopped halfway (nothing of the open transaction is visible); the next
    pass starts over from the last committed checkpoint."""


class Publishing:
    """One store's publisher, kept across passes."""

    def __init__(self, store: EventStore, settings: Settings) -> None:
        assert settings.kafka is not None
        self.store = store
        self.settings = settings
        self.kafka = settings.kafka
        self._publisher: Publisher | None = None
        self._deployed: str | None = None

    def publish(self, progress: Progress | None = None) -> PublishReport:
        """Everything not yet published (PublishFailed when Kafka fails; nothing half-done)."""
        try:
            return self._current().publish(progress)
        except KafkaException as e:
            self.reset()
            raise PublishFailed(
                f"publishing to Kafka at {self.kafka.bootstrap_servers} failed: "
                f"{e.args[0].str()}; the next pass starts over from the last committed "
                "checkpoint (nothing is published twice)"
            ) from e
        except RegistryError as e:
            self.reset()
            raise PublishFailed(str(e)) from None
        except SyncHubError:
            self.reset()
            raise

    def _current(self) -> Publisher:
        with self.store.db.transaction(commit=False) as c:
            deployed = active_canonical(c)  # every pass: the text only, parsed on a change
        if self._publisher is None or deployed != self._deployed:
            self.reset()
            canonical = BUILTIN if deployed is None else CanonicalSchemas.from_json(deployed)
            self._publisher = Publisher(
                self.store,
                self.kafka,
                TopicSchemas(canonical),
                producer_options=self.settings.kafka_options("producer"),
                consumer_options=self.settings.kafka_options("consumer"),
                registry_options=self.settings.kafka_options("schema_registry"),
            )
            self._deployed = deployed
        return self._publisher

    def reset(self) -> None:
        """Drop the publisher (after a failure, or when another process took over): the next
        pass makes a new one, which reads the checkpoint back."""
        if self._publisher is not None:
            try:
                self._publisher.close()
            except KafkaException:
                log.debug("closing the publisher", exc_info=True)
            self._publisher = None

    def close(self) -> None:
        self.reset()
