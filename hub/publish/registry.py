"""A Confluent-compatible schema registry (`kafka.schema_registry.url`): the published values
in the Confluent wire format instead of Avro single-object encoding.

Each topic's value schema is registered under `<topic>-value` (TopicNameStrategy, what
Confluent's serializers and Kafka Connect look up): `canonical.time_entry-value` and
`canonical.time_entry.state-value`. A value is then byte 0, the schema's 4-byte id
(big-endian), and the same Avro body as in single-object encoding. Registering the same schema
again returns its id (nothing new is registered); a registry whose compatibility rule refuses
a schema stops publishing with the subject and the registry's reason, before anything is sent.
"""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka.schema_registry import Schema as RegistrySchema
from confluent_kafka.schema_registry import SchemaRegistryClient, SchemaRegistryError

from hub.avro import Schema
from hub.errors import SyncHubError
from hub.publish.topics import TopicSchemas, change_schema, snake, state_schema

__all__ = ["RegistryError", "SchemaRegistry", "subjects"]


class RegistryError(SyncHubError):
    """The registry refused a schema or could not be reached: nothing was published."""


def subjects(prefix: str, entity: str) -> tuple[str, str]:
    """The subjects of an entity's change topic and state topic."""
    topic = prefix + snake(entity)
    return f"{topic}-value", f"{topic}.state-value"


class SchemaRegistry:
    """One registry client (settings as `confluent_kafka.schema_registry` takes them: `url`,
    `basic.auth.user.info`, `ssl.ca.location`…)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.url = str(options["url"]).split(",")[0]
        try:
            self.client = SchemaRegistryClient({"timeout": 10, **options})
        except (ValueError, TypeError) as e:
            raise RegistryError(f"kafka.schema_registry: {e}; see docs/consumers.md") from None

    def attach(self, schemas: TopicSchemas, prefix: str) -> None:
        """Register every entity's two topic schemas and have `schemas` write (and read) the
        Confluent wire format with their ids."""
        for entity in schemas.entities():
            change, state = subjects(prefix, entity)
            latest = schemas.canonical.schema(entity)
            change_id = self._register(change, change_schema(latest))
            state_id = self._register(state, state_schema(latest))
            schemas.use_ids(entity, change_id, state_id)
        schemas.resolver = self.schema

    def reader(self, schemas: TopicSchemas) -> TopicSchemas:
        """`schemas`, reading values of ids it does not know from the registry."""
        schemas.resolver = self.schema
        return schemas

    def _register(self, subject: str, schema: dict[str, Any]) -> int:
        try:
            return int(self.client.register_schema(subject, RegistrySchema(json.dumps(schema))))
        except SchemaRegistryError as e:
            if e.http_status_code in (409, 422):
                raise RegistryError(
                    f"the schema registry at {self.url} refused the schema of {subject} "
                    f"(HTTP {e.http_status_code}): {e.error_message}. Nothing was published. "
                    "A compatibility rule refuses it: check the subject's earlier versions "
                    f"(GET {self.url}/subjects/{subject}/versions) and its compatibility "
                    "level, or publish under another kafka.topic_prefix"
                ) from None
            raise self._failed(f"registering {subject}", e, "; nothing was published") from None
        except Exception as e:  # httpx's connection errors and timeouts
            raise self._failed(f"registering {subject}", e, "; nothing was published") from None

    def schema(self, schema_id: int) -> Schema:
        """The schema registered under `schema_id`."""
        try:
            found = self.client.get_schema(schema_id)
            return Schema.from_dict(json.loads(str(found.schema_str)))
        except Exception as e:
            raise self._failed(f"reading schema id {schema_id}", e) from None

    def _failed(self, doing: str, e: Exception, then: str = "") -> RegistryError:
        if isinstance(e, SchemaRegistryError):
            said = f"HTTP {e.http_status_code}: {e.error_message}"
            if e.http_status_code in (401, 403):
                said += "; check kafka.schema_registry's credentials (basic.auth.user.info…)"
        else:
            said = f"{type(e).__name__}: {e}; check kafka.schema_registry.url"
        return RegistryError(f"the schema registry at {self.url} failed {doing} ({said}){then}")
