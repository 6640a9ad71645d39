"""Settings: secrets found for redaction, `${NAME}` resolved when it is needed, and config files
that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import Settings, load_settings
from hub.errors import ConfigError


def _settings(**options: object) -> Settings:
    return Settings.model_validate({"connectors": {"erp": {"type": "x", **options}}})


def test_secret_options_are_redacted_at_any_depth() -> None:
    s = _settings(password="hunter22", accounts={"ann": "tok-ann-1"}, user="admin")
    assert s.redact("login admin/hunter22 with tok-ann-1") == "login admin/*** with ***"


def test_a_password_inside_a_url_is_redacted() -> None:
    s = _settings(
        url="http://admin:s3cr3t-pw@erp.example:8000/tryton",
        dsn="postgresql://sync:pg%40pass@db/synchub",
    )
    message = "cannot reach http://admin:s3cr3t-pw@erp.example:8000/tryton; postgresql://sync:pg%40pass@db"
    redacted = s.redact(message)
    assert "s3cr3t-pw" not in redacted and "pg%40pass" not in redacted
    assert "http://admin:***@erp.example:8000/tryton" in redacted


def test_a_config_that_is_a_folder_or_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as folder:
        load_settings(tmp_path)
    assert str(tmp_path) in str(folder.value)
    latin1 = tmp_path / "synchub.yaml"
    latin1.write_bytes(b"store: {path: ./caf\xe9.db}\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_settings(latin1)


def test_any_url_password_in_a_message_is_redacted_even_a_short_one() -> None:
    s = _settings(url="https://bob:pw@erp.example")
    assert s.redact("redirected to https://bob:pw@other.example/x") == (
        "redirected to https://bob:***@other.example/x"
    )
    assert s.redact("pwned? no: the bare word stays") == "pwned? no: the bare word stays"


def test_connector_variables_are_resolved_only_when_the_connector_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNCHUB_TEST_TOKEN", raising=False)
    monkeypatch.setenv("SYNCHUB_TEST_DB", "shop.db")
    path = tmp_path / "synchub.yaml"
    path.write_text(
        "store: {path: './${SYNCHUB_TEST_DB}'}\n"
        "connectors:\n"
        "  crm: {type: x, user: sync, accounts: {ann: '${SYNCHUB_TEST_TOKEN}'}}\n"
    )
    s = load_settings(path)  # reading the config needs no connector secret
    assert s.store_path == tmp_path / "shop.db"  # the rest of the config is resolved at once
    assert s.redact("nothing to hide") == "nothing to hide"
    with pytest.raises(ConfigError) as unset:
        s.connectors["crm"].options()
    said = str(unset.value)
    assert f"{path}: connectors.crm.accounts.ann refers to ${{SYNCHUB_TEST_TOKEN}}" in said
    assert "`export SYNCHUB_TEST_TOKEN=...`" in said
    monkeypatch.setenv("SYNCHUB_TEST_TOKEN", "tok-ann-secret")
    assert s.connectors["crm"].options() == {"user": "sync", "accounts": {"ann": "tok-ann-secret"}}
    assert s.redact("sent tok-ann-secret") == "sent ***"


def test_a_variable_outside_the_connectors_is_still_needed_when_the_config_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNCHUB_TEST_DB", raising=False)
    path = tmp_path / "synchub.yaml"
    path.write_text("store: {path: './${SYNCHUB_TEST_DB}'}\n")
    with pytest.raises(ConfigError, match=r"store.*SYNCHUB_TEST_DB.*not set"):
        load_settings(path)


def test_kafka_and_schema_registry_credentials_are_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNCHUB_TEST_REGISTRY", "sync-user:r3g-secret")
    s = Settings.model_validate(
        {
            "kafka": {
                "bootstrap_servers": "broker:9092",
                "producer": {"sasl.password": "k4fka-pw"},
                "schema_registry": {
                    "url": "https://registry.example/apis/ccompat/v7",
                    "basic.auth.user.info": "${SYNCHUB_TEST_REGISTRY}",
                },
            }
        }
    )
    assert s.kafka_options("schema_registry")["basic.auth.user.info"] == "sync-user:r3g-secret"
    said = s.redact("auth sync-user:r3g-secret failed; sasl k4fka-pw; https://registry.example")
    assert said == "auth *** failed; sasl ***; https://registry.example"
