"""A firm's own canonical entity and field, end to end through the CLI: schemas in `canonical/`
beside the config, used by the mapping, enforced on values, deployed with the mapping (a
rebuild gives the same state), and a deployment that would break them refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from hub.schemas import canonical_versions
from tests.integration.conftest import MAPPING, Firm, entries

ENGAGEMENT = {
    "type": "record",
    "name": "Engagement",
    "namespace": "acme.canonical",
    "doc": "A statement of work under a framework contract.",
    "fields": [
        {"name": "id", "type": "string", "doc": "Canonical id (the contract system's key)."},
        {"name": "account", "type": ["null", "string"], "default": None, "doc": "Customer code."},
        {"name": "ceiling", "type": ["null", "double"], "default": None, "doc": "Budget cap."},
    ],
}


def setup_extension(firm: Firm) -> None:
    """engagements.jsonl → the firm's Engagement; TimeEntry gains cost_center (its next
    version after synchub's)."""
    folder = firm.root / "canonical"
    (folder / "engagement").mkdir(parents=True)
    (folder / "engagement" / "v1.avsc").write_text(json.dumps(ENGAGEMENT, indent=1))
    latest = json.loads(canonical_versions("TimeEntry")[-1].json)
    latest["fields"].append(
        {"name": "cost_center", "type": ["null", "string"], "default": None, "doc": "Cost centre."}
    )
    nxt = len(canonical_versions("TimeEntry")) + 1
    (folder / "timeentry").mkdir()
    (folder / "timeentry" / f"v{nxt}.avsc").write_text(json.dumps(latest, indent=1))

    config = yaml.safe_load(firm.config.read_text())
    config["connectors"]["tracker"]["objects"]["engagements"] = {
        "pattern": "engagements_*.jsonl",
        "key": "id",
        "fields": {"id": "string", "account": "string", "ceiling": "string"},
    }
    firm.config.write_text(yaml.safe_dump(config))
    mapping: dict[str, Any] = json.loads(json.dumps(MAPPING))
    mapping["entities"]["Engagement"] = {"owner": "tracker"}
    mapping["sources"].append(
        {
            "system": "tracker",
            "object": "engagements",
            "entity": "Engagement",
            "id": "$key",
            "fields": {"account": "account", "ceiling": "ceiling | float"},
        }
    )
    mapping["sources"][1]["fields"]["cost_center"] = "person | upper"
    (firm.root / "mapping.yaml").write_text(yaml.safe_dump(mapping))


def engagements(firm: Firm, rows: list[dict[str, str]]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (firm.root / "inbox" / "engagements_1.jsonl").write_text(text)


def test_a_firm_extends_the_canonical_model_from_its_config_folder(firm: Firm) -> None:
    setup_extension(firm)
    firm.write_entries("time_1.csv", entries(6))
    engagements(
        firm,
        [
            {"id": "SOW-1", "account": "ACME", "ceiling": "12000.5"},
            {"id": "SOW-2", "account": "GLOBEX", "ceiling": "a lot"},
        ],
    )
    first = firm.run("sync", "--once")
    assert first.returncode in (0, 2), first.stdout + first.stderr

    assert firm.json("state", "engagement", "SOW-1")["fields"] == {
        "account": "ACME",
        "ceiling": 12000.5,
    }
    assert firm.json("state", "TimeEntry", "e1")["fields"]["cost_center"] == "BOB"
    listing = firm.json("state", "Engagement", "--all")
    assert [e["canonical_id"] for e in listing["entities"]] == ["Engagement/SOW-1"]
    (bad,) = [x for x in firm.json("exceptions", "list") if "SOW-2" in json.dumps(x)]
    assert "ceiling" in json.dumps(bad)
    deployed = firm.json("events", "tail", "--type", "MappingDeployed")
    assert len(deployed) == 1 and "Engagement" in deployed[0]["payload"]["canonical"]

    idle = firm.json("sync", "--once")  # nothing changed anywhere
    assert idle["ingest"][0]["appended"] == 0 and idle["planned"]["planned"] == 0
    assert idle["deployed_mapping_version"] is None
    before = firm.json("checksum")["checksums"]
    firm.json("rebuild")
    assert firm.json("checksum")["checksums"] == before

    # v1 edited in place (ceiling now text): what was deployed could not be read; refused
    changed = json.loads(json.dumps(ENGAGEMENT))
    changed["fields"][2]["type"] = ["null", "string"]
    (firm.root / "canonical" / "engagement" / "v1.avsc").write_text(json.dumps(changed))
    head = firm.json("status")["store"]["head"]
    refused = firm.run("sync", "--once")
    assert refused.returncode != 0
    said = " ".join((refused.stdout + refused.stderr).split())
    assert "Engagement" in said and "deployed before" in said, said
    assert firm.json("status")["store"]["head"] == head

    # the right way: v1 back as it was, and a v2 with a new optional field
    (firm.root / "canonical" / "engagement" / "v1.avsc").write_text(json.dumps(ENGAGEMENT))
    v2 = json.loads(json.dumps(ENGAGEMENT))
    v2["fields"].append(
        {"name": "po_number", "type": ["null", "string"], "default": None, "doc": "PO."}
    )
    (firm.root / "canonical" / "engagement" / "v2.avsc").write_text(json.dumps(v2))
    redeployed = firm.json("sync", "--once")
    assert redeployed["deployed_mapping_version"] == 2, redeployed
    assert firm.json("state", "engagement", "SOW-1")["fields"]["ceiling"] == 12000.5


def test_the_canonical_schemas_folder_can_be_named_in_the_config(
    firm: Firm, tmp_path: Path
) -> None:
    setup_extension(firm)
    (firm.root / "canonical").rename(firm.root / "model")
    config = yaml.safe_load(firm.config.read_text())
    config["canonical_schemas"] = "./model"
    firm.config.write_text(yaml.safe_dump(config))
    engagements(firm, [{"id": "SOW-9", "account": "ACME", "ceiling": "10"}])
    done = firm.run("sync", "--once")
    assert done.returncode in (0, 2), done.stdout + done.stderr
    assert firm.json("state", "Engagement", "SOW-9")["fields"]["ceiling"] == 10.0
