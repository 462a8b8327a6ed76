"""The configuration file (ledgerlink.configfile): the shipped files load, and every broken file is refused
with an error naming the file, the field's path and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerlink.configfile import ConfigFileError, load, parse, shipped_files
from tests.conftest import FIXTURES, REPO_ROOT

BROKEN = FIXTURES / "config"

VALID = b"""
version = 1
[defaults]
time_zone = "Europe/Berlin"
[[connections]]
name = "acme"
qbo = { realm_id = "123" }
hubspot = { portal_id = "456" }
country = "DE"
[connections.property_map]
invoice = [{ qbo_name = "PO Number", hubspot_property = "qbo_po_number" }]
[connections.tax_codes.DE]
"3" = { name = "USt 19 %", rate_percent = 19 }
[connections.follow_up]
enabled = true
days_past_due = [1, 7]
[[connections]]
name = "nordlicht"
time_zone = "Europe/Oslo"
qbo = { realm_id = "789" }
hubspot = { portal_id = "1011" }
"""


def _refused(content: bytes) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as refused:
        parse(content, "t.toml")
    return refused.value


def test_every_shipped_file_loads() -> None:
    files = shipped_files(REPO_ROOT)
    assert {path.relative_to(REPO_ROOT).as_posix() for path in files} >= {
        "infra/config/dev.toml",
        "infra/config/staging.toml",
        "infra/config/prod.toml",
        "local/config/local.toml",
    }
    for path in files:
        config = load(path)
        assert config.connections, path


def test_a_valid_file_gives_each_connection_its_own_mapping_and_the_defaults_it_does_not_override() -> None:
    config = parse(VALID, "t.toml")
    acme, nordlicht = config.connections
    assert (acme.time_zone.key, nordlicht.time_zone.key) == ("Europe/Berlin", "Europe/Oslo")
    assert config.by_realm("789") is nordlicht and config.by_portal("456") is acme
    assert config.by_realm("999") is None
    assert acme.property_map["invoice"][0].hubspot_property == "qbo_po_number"
    tax_code = acme.tax_code("3")
    assert tax_code is not None and tax_code.rate_percent == 19
    assert nordlicht.tax_code("3") is None
    assert (acme.follow_up.enabled, acme.follow_up.days_past_due) == (True, (1, 7))
    assert nordlicht.follow_up.days_past_due == (1,)  # the built-in default
    # no stage map configured: HubSpot's default sales pipeline
    assert acme.invoice_stages.by_status["paid"].stage == "closedwon"
    assert acme.secret_name("prod", "hubspot") == "ledgerlink/prod/connections/acme/hubspot/app"


def test_the_version_is_the_content_hash_so_any_edit_changes_it() -> None:
    first = parse(VALID, "t.toml").version
    assert len(first) == 12 and first == parse(VALID, "t.toml").version
    assert parse(VALID + b"\n# a comment\n", "t.toml").version != first


def test_a_misspelled_key_is_named_with_its_path_and_what_it_may_be() -> None:
    with pytest.raises(ConfigFileError) as refused:
        load(BROKEN / "misspelled-key.toml")
    assert str(refused.value) == (
        f"{BROKEN / 'misspelled-key.toml'}: connections[0].stages.invoice: unknown key 'piplines' "
        "(expected one of: pipeline, stages; did you mean 'pipeline'?)"
    )


def test_a_stage_map_naming_an_unknown_status_is_refused() -> None:
    with pytest.raises(ConfigFileError) as refused:
        load(BROKEN / "unknown-status.toml")
    assert refused.value.path == "connections[0].stages.invoice.stages"
    assert "'opn' is not an invoice status" in refused.value.reason
    assert "did you mean 'open'?" in refused.value.reason


@pytest.mark.parametrize(
    ("content", "path", "reason"),
    [
        (b"version = 1\nconnections = [", "$", "is not valid TOML"),
        (VALID.replace(b"version = 1", b"version = 2"), "version", "1 was expected"),
        (b"version = 1\n", "$", "'connections' is required"),
        (
            VALID.replace(b'realm_id = "789"', b'realm_id = "123"'),
            "connections[1].qbo.realm_id",
            "'123' is already connections[0]'s",
        ),
        (VALID.replace(b'"Europe/Oslo"', b'"Europe/Osl0"'), "connections[1].time_zone", "not a time zone"),
        (VALID.replace(b'realm_id = "789"', b'realm_id = "789\\n"'), "connections[1].qbo.realm_id", "match"),
        (VALID.replace(b'name = "acme"', b'name = "Acme Inc"'), "connections[0].name", "match"),
        (
            VALID.replace(b"days_past_due = [1, 7]", b'business_hours = { start = "17:00", end = "09:00" }'),
            "connections[0].follow_up.business_hours",
            "start 17:00 must be before end 09:00",
        ),
    ],
)
def test_each_broken_file_names_the_field_and_why(content: bytes, path: str, reason: str) -> None:
    error = _refused(content)
    assert error.path == path, str(error)
    assert reason in error.reason, str(error)
    assert str(error).startswith(f"t.toml: {path}: ")


def test_a_missing_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"nowhere\.toml: \$: cannot be read"):
        load(tmp_path / "nowhere.toml")
