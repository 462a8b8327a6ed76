"""What goes on the calendar for an owed invoice (ledgerlink.calendar_sync.entry)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

from ledgerlink.calendar_sync.entry import due_date_entry
from ledgerlink.calendar_sync.inbox import DealSynced, parse_record
from ledgerlink.configfile import CalendarSettings
from ledgerlink.graph.zones import outlook_zone
from ledgerlink.money import display_amount
from tests.conftest import FIXTURES

RECORDED = FIXTURES / "events" / "deal-synced-open-invoice.json"


def recorded() -> DealSynced:
    return parse_record({"messageId": "m-1", "body": RECORDED.read_text(), "attributes": {}})


def test_the_subject_names_the_invoice_the_customer_and_the_open_balance() -> None:
    entry = due_date_entry(recorded(), CalendarSettings(enabled=True), portal_id="48213570")
    assert entry.subject == "Invoice 1042 due: Acme Corporation, USD 1,250.00 open"


def test_an_invoice_without_a_doc_number_is_named_by_its_id() -> None:
    entry = due_date_entry(replace(recorded(), doc_number=""), CalendarSettings(), portal_id="1")
    assert entry.subject.startswith("Invoice #1042 due:")


def test_amounts_keep_their_currencys_exponent() -> None:
    assert display_amount(Decimal("1500"), "JPY") == "JPY 1,500"
    assert display_amount(Decimal("12.5"), "KWD") == "KWD 12.500"
    assert display_amount(Decimal("1234567.8"), "EUR") == "EUR 1,234,567.80"


def test_names_are_escaped_in_the_html_body() -> None:
    event = replace(recorded(), customer=replace(recorded().customer, name='<script>"Acme" & Co</script>'))
    entry = due_date_entry(event, CalendarSettings(), portal_id="48213570")
    assert "<script>" not in entry.body_html
    assert "&lt;script&gt;&quot;Acme&quot; &amp; Co&lt;/script&gt;" in entry.body_html


def test_the_body_links_the_deal_and_the_invoice_on_the_configured_hosts() -> None:
    settings = CalendarSettings(
        hubspot_app_url="https://app-eu1.hubspot.com", qbo_app_url="https://qbo.example"
    )
    entry = due_date_entry(recorded(), settings, portal_id="143920517")
    assert 'href="https://app-eu1.hubspot.com/contacts/143920517/record/0-3/31000000412"' in entry.body_html
    assert 'href="https://qbo.example/app/invoice?txnId=1042"' in entry.body_html


def test_the_event_is_all_day_in_the_companys_windows_zone_with_the_reminder_days_before() -> None:
    body = due_date_entry(
        recorded(), CalendarSettings(reminder_days_before=3, show_as="tentative"), portal_id="1"
    ).graph_body()
    assert body["start"] == {"dateTime": "2026-03-08T00:00:00", "timeZone": "Eastern Standard Time"}
    assert body["end"] == {"dateTime": "2026-03-09T00:00:00", "timeZone": "Eastern Standard Time"}
    assert body["isAllDay"] is True
    assert body["showAs"] == "tentative"
    assert body["reminderMinutesBeforeStart"] == 3 * 24 * 60


def test_a_zone_without_a_windows_name_is_sent_as_iana_unless_the_connection_names_one() -> None:
    assert outlook_zone("Pacific/Chatham") == "Pacific/Chatham"
    assert outlook_zone("Pacific/Chatham", "Chatham Islands Standard Time") == "Chatham Islands Standard Time"
    assert outlook_zone("Europe/London") == "GMT Standard Time"


def test_the_fingerprint_changes_with_the_content_and_the_mailbox_only() -> None:
    settings = CalendarSettings()
    entry = due_date_entry(recorded(), settings, portal_id="1")
    same = due_date_entry(replace(recorded(), event_id="another delivery"), settings, portal_id="1")
    moved = due_date_entry(replace(recorded(), balance=Decimal("10.00")), settings, portal_id="1")
    assert entry.fingerprint("a@x.example") == same.fingerprint("A@X.example")
    assert entry.fingerprint("a@x.example") != moved.fingerprint("a@x.example")
    assert entry.fingerprint("a@x.example") != entry.fingerprint("b@x.example")
    assert json.dumps(entry.graph_body())  # serialisable as sent
