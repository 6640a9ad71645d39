"""A firm's own canonical schemas (hub.canonical_schemas): loaded from a folder beside the
config, checked like the built-in ones, deployed and compared with what was deployed before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.canonical_schemas import BUILTIN, CanonicalSchemas
from hub.errors import IncompatibleSchemaError, SchemaError
from hub.schemas import canonical_entities, canonical_versions


def field(name: str, kind: Any = "string", doc: str = "documented", **more: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "doc": doc, **more}


def optional(name: str, kind: str = "string") -> dict[str, Any]:
    return field(name, ["null", kind], default=None)


ENGAGEMENT_V1 = {
    "type": "record",
    "name": "Engagement",
    "namespace": "acme.canonical",
    "doc": "A statement of work under a framework contract.",
    "fields": [field("id"), optional("account_id"), optional("ceiling", "double")],
}
ENGAGEMENT_V2 = {**ENGAGEMENT_V1, "fields": [*ENGAGEMENT_V1["fields"], optional("po_number")]}


def timeentry_next(*extra: dict[str, Any]) -> dict[str, Any]:
    """The built-in TimeEntry's latest schema with `extra` fields: its next version."""
    latest = json.loads(canonical_versions("TimeEntry")[-1].json)
    return {**latest, "fields": [*latest["fields"], *extra]}


def write(folder: Path, entity: str, version: int, schema: dict[str, Any] | str) -> Path:
    path = folder / entity / f"v{version}.avsc"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema, indent=1))
    return path


def test_a_new_entity_and_new_fields_on_a_built_in_one(tmp_path: Path) -> None:
    builtin_te = len(canonical_versions("TimeEntry"))
    write(tmp_path, "engagement", 1, ENGAGEMENT_V1)
    write(tmp_path, "engagement", 2, ENGAGEMENT_V2)
    write(tmp_path, "timeentry", builtin_te + 1, timeentry_next(optional("cost_center")))
    schemas = CanonicalSchemas.load(tmp_path)

    assert schemas.entities() == sorted([*canonical_entities(), "Engagement"])
    assert [s.name for s in schemas.versions("Engagement")] == ["acme.canonical.Engagement"] * 2
    assert len(schemas.versions("TimeEntry")) == builtin_te + 1
    assert schemas.fields()["Engagement"] == ["id", "account_id", "ceiling", "po_number"]
    assert schemas.fields()["TimeEntry"][-1] == "cost_center"
    assert schemas.schema("Person") == BUILTIN.schema("Person")  # the others are synchub's
    again = CanonicalSchemas.from_json(schemas.to_json())
    assert again.fields() == schemas.fields() and again.to_json() == schemas.to_json()
    again.check_follows(schemas)
    schemas.check_follows(BUILTIN)


def test_no_folder_or_an_empty_one_is_the_built_in_model(tmp_path: Path) -> None:
    assert CanonicalSchemas.load(None) is BUILTIN
    assert CanonicalSchemas.load(tmp_path / "missing") is BUILTIN
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("not a schema")
    assert CanonicalSchemas.load(tmp_path) is BUILTIN
    assert BUILTIN.to_json() == "" and CanonicalSchemas.from_json("") is BUILTIN


@pytest.mark.parametrize(
    ("files", "error", "says"),
    [
        ({("engagement", 2): ENGAGEMENT_V1}, SchemaError, "expected v1.avsc, found v2.avsc"),
        (
            {("timeentry", 1): timeentry_next()},
            SchemaError,
            "after synchub's v1..v",
        ),
        (
            {("engagement", 1): {**ENGAGEMENT_V1, "name": "Contract"}},
            SchemaError,
            "the record is named 'Contract' but its folder is 'engagement'",
        ),
        (
            {
                ("engagement", 1): {
                    **ENGAGEMENT_V1,
                    "fields": [field("id"), {"name": "x", "type": "long"}],
                }
            },
            SchemaError,
            'give every field a "doc"; missing on x',
        ),
        (
            {("engagement", 1): {**ENGAGEMENT_V1, "fields": [field("code")]}},
            SchemaError,
            'needs an "id" field',
        ),
        ({("engagement", 1): "{not json"}, SchemaError, "is not valid JSON"),
        (
            {("engagement", 1): {**ENGAGEMENT_V1, "fields": [field("id", "strnig")]}},
            SchemaError,
            "is not a valid Avro schema",
        ),
        (
            {
                ("engagement", 1): ENGAGEMENT_V1,
                ("engagement", 2): {
                    **ENGAGEMENT_V1,
                    "fields": [*ENGAGEMENT_V1["fields"], field("po")],
                },
            },
            IncompatibleSchemaError,
            "cannot read data written with v1",
        ),
    ],
)
def test_a_wrong_folder_names_the_file_and_the_fix(
    tmp_path: Path, files: dict[tuple[str, int], Any], error: type[Exception], says: str
) -> None:
    for (entity, version), schema in files.items():
        write(tmp_path, entity, version, schema)
    with pytest.raises(error) as raised:
        CanonicalSchemas.load(tmp_path)
    assert says in str(raised.value)
    assert str(tmp_path) in str(raised.value)


def test_a_badly_named_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "engagement", 1, ENGAGEMENT_V1)
    (tmp_path / "engagement" / "latest.avsc").write_text("{}")
    with pytest.raises(SchemaError, match=r"name a schema file v<N>\.avsc"):
        CanonicalSchemas.load(tmp_path)


def test_a_deployment_must_read_what_the_previous_one_deployed(tmp_path: Path) -> None:
    write(tmp_path / "a", "engagement", 1, ENGAGEMENT_V1)
    deployed = CanonicalSchemas.load(tmp_path / "a")
    with pytest.raises(IncompatibleSchemaError, match="Engagement was deployed before"):
        BUILTIN.check_follows(deployed)
    changed = {
        **ENGAGEMENT_V1,
        "fields": [field("id"), optional("account_id"), optional("ceiling")],
    }
    write(tmp_path / "b", "engagement", 1, changed)  # v1 edited in place: ceiling now text
    with pytest.raises(IncompatibleSchemaError, match="cannot read data of the version deployed"):
        CanonicalSchemas.load(tmp_path / "b").check_follows(deployed)
    write(tmp_path / "c", "engagement", 1, ENGAGEMENT_V1)
    write(tmp_path / "c", "engagement", 2, ENGAGEMENT_V2)
    CanonicalSchemas.load(tmp_path / "c").check_follows(deployed)  # a new version: fine
