"""The marks of a CRM-born document (docs/mapping.md#crm-born-documents): the note's marker, written by
the HubSpot → QBO flow and read by the deal sync."""

from __future__ import annotations

import pytest

from ledgerlink.mapping.origin import origin_deal, origin_marker

PORTAL = "48213570"


def test_the_marker_is_the_agreed_text() -> None:
    assert origin_marker("91013", PORTAL) == "LedgerLink: HubSpot deal 91013 (portal 48213570)"


@pytest.mark.parametrize(
    "note",
    [
        "LedgerLink: HubSpot deal 91013 (portal 48213570)",
        "Quote for the Q3 works.\nLedgerLink: HubSpot deal 91013 (portal 48213570)\nCall before delivery.",
        # QBO writes "Voided" in front of a voided document's note
        "Voided - LedgerLink: HubSpot deal 91013 (portal 48213570)",
    ],
)
def test_the_deal_is_found_anywhere_in_the_note(note: str) -> None:
    assert origin_deal(note, PORTAL) == "91013"


@pytest.mark.parametrize(
    "note",
    [
        None,
        "",
        "Call before delivery.",
        "LedgerLink: HubSpot deal 91013 (portal 77777777)",  # another connection's portal
        "LedgerLink: HubSpot deal 91013 (portal 482135700)",  # not this portal, only a prefix of it
        "LedgerLink: HubSpot deal 91013",  # no portal
        "ledgerlink: hubspot deal 91013 (portal 48213570)",  # not the marker's text
        "LedgerLink: HubSpot deal abc (portal 48213570)",
    ],
)
def test_no_marker_for_this_portal_is_no_deal(note: str | None) -> None:
    assert origin_deal(note, PORTAL) is None


def test_the_marker_of_this_portal_is_chosen_among_others() -> None:
    note = f"{origin_marker('5', '77777777')} {origin_marker('91013', PORTAL)}"
    assert origin_deal(note, PORTAL) == "91013"
    assert origin_deal(note, "77777777") == "5"


def test_without_a_portal_no_note_names_a_deal() -> None:
    assert origin_deal(origin_marker("91013", PORTAL), "") is None


@pytest.mark.parametrize(
    ("deal_id", "portal_id"), [("", PORTAL), ("91 013", PORTAL), ("91013", "portal"), ("١٢", PORTAL)]
)
def test_a_marker_names_numeric_ids_only(deal_id: str, portal_id: str) -> None:
    with pytest.raises(ValueError):
        origin_marker(deal_id, portal_id)
