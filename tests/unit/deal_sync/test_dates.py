"""Dates in the company's zone, HubSpot date/datetime values, across DST (docs/mapping.md#dates)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from ledgerlink.dates import (
    company_today,
    epoch_ms,
    hubspot_date,
    parse_qbo_date,
    parse_qbo_datetime,
    start_of_day,
)
from ledgerlink.deal_sync.mapping import map_invoice
from ledgerlink.mapping.errors import MappingError
from ledgerlink.mapping.stages import default_invoice_stages
from tests.unit.deal_sync.helpers import KOLKATA, NEW_YORK, at, company, qbo_entity


@pytest.mark.parametrize(
    ("day", "zone", "expected"),
    [
        # spring forward, 2025-03-09: midnight is still EST; the next midnight is EDT
        (date(2025, 3, 9), NEW_YORK, "2025-03-09T00:00:00-05:00"),
        (date(2025, 3, 10), NEW_YORK, "2025-03-10T00:00:00-04:00"),
        # fall back, 2025-11-02: midnight is still EDT; the next midnight is EST
        (date(2025, 11, 2), NEW_YORK, "2025-11-02T00:00:00-04:00"),
        (date(2025, 11, 3), NEW_YORK, "2025-11-03T00:00:00-05:00"),
        # no DST in Kolkata: always +05:30
        (date(2025, 3, 9), KOLKATA, "2025-03-09T00:00:00+05:30"),
        (date(2025, 11, 2), KOLKATA, "2025-11-02T00:00:00+05:30"),
        # Chile springs forward at midnight: 2025-09-07 starts at 01:00 -03:00
        (date(2025, 9, 7), ZoneInfo("America/Santiago"), "2025-09-07T01:00:00-03:00"),
    ],
)
def test_start_of_day_has_the_real_offset(day: date, zone: ZoneInfo, expected: str) -> None:
    start = start_of_day(day, zone)

    assert start.isoformat() == expected
    assert epoch_ms(start) == int(datetime.fromisoformat(expected).timestamp()) * 1000


def test_days_around_the_transitions_are_23_and_25_hours_long() -> None:
    def hours(day: date) -> float:
        following = date.fromordinal(day.toordinal() + 1)
        return (
            epoch_ms(start_of_day(following, NEW_YORK)) - epoch_ms(start_of_day(day, NEW_YORK))
        ) / 3_600_000

    assert (hours(date(2025, 3, 9)), hours(date(2025, 11, 2)), hours(date(2025, 6, 1))) == (23, 25, 24)


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        ("2025-03-09T04:59:59+00:00", NEW_YORK, date(2025, 3, 8)),  # 23:59:59 EST on the 8th
        ("2025-03-09T05:00:00+00:00", NEW_YORK, date(2025, 3, 9)),
        ("2025-11-02T03:59:59+00:00", NEW_YORK, date(2025, 11, 1)),  # 23:59:59 EDT on the 1st
        ("2025-11-02T04:00:00+00:00", NEW_YORK, date(2025, 11, 2)),
        ("2025-11-02T05:30:00+00:00", NEW_YORK, date(2025, 11, 2)),  # the repeated 01:30 hour
        ("2025-03-08T18:29:59+00:00", KOLKATA, date(2025, 3, 8)),
        ("2025-03-08T18:30:00+00:00", KOLKATA, date(2025, 3, 9)),
    ],
)
def test_today_is_the_company_zone_date(instant: str, zone: ZoneInfo, expected: date) -> None:
    assert company_today(at(instant), zone) == expected


def test_hubspot_date_is_midnight_utc_whatever_the_zone() -> None:
    # HubSpot rejects a date property that is not midnight UTC; DST days are no exception
    assert hubspot_date(date(2025, 3, 9)) == "1741478400000"  # 2025-03-09T00:00:00Z
    assert hubspot_date(date(2025, 11, 2)) == "1762041600000"  # 2025-11-02T00:00:00Z
    for day in (date(2025, 3, 9), date(2025, 11, 2)):
        assert int(hubspot_date(day)) % 86_400_000 == 0


@pytest.mark.parametrize(
    ("zone", "closedate", "due_date"),
    [
        # New York: TxnDate 2025-03-09 starts at 00:00 EST (-05:00)
        (NEW_YORK, "1741496400000", "1762041600000"),
        # Kolkata: the same calendar dates start at 00:00 +05:30; the due date is still midnight UTC
        (KOLKATA, "1741458600000", "1762041600000"),
    ],
)
def test_invoice_dates_on_dst_days(zone: ZoneInfo, closedate: str, due_date: str) -> None:
    # given an invoice dated 2025-03-09, due 2025-11-02, with a line serviced on 2025-03-09
    invoice = qbo_entity("invoice_dst.json")

    # when it is mapped for a company in the zone
    result = map_invoice(
        invoice, company(zone=zone), default_invoice_stages(), now=at("2025-03-10T12:00:00+00:00")
    )

    # then the deal closes at the start of TxnDate in that zone and the date properties are zone-free
    props = result.deal.properties
    assert props["closedate"] == closedate
    assert props["qbo_txn_date"] == "1741478400000"  # 2025-03-09T00:00:00Z
    assert props["qbo_due_date"] == due_date
    assert result.line_items[0].properties["qbo_service_date"] == "1741478400000"
    # LastUpdatedTime 2025-03-09T03:00:01-07:00 is an instant: the same epoch ms in every zone
    assert props["qbo_last_updated"] == "1741514401000"


def test_qbo_date_forms() -> None:
    assert parse_qbo_date("2025-03-09", entity="Invoice 1", field="TxnDate") == date(2025, 3, 9)
    assert parse_qbo_date("2025-03-09-05:00", entity="Invoice 1", field="TxnDate") == date(2025, 3, 9)
    with pytest.raises(MappingError, match=r"Invoice 1 DueDate: is not a real calendar date: '2025-02-30'"):
        parse_qbo_date("2025-02-30", entity="Invoice 1", field="DueDate")


def test_qbo_timestamp_without_offset_is_read_in_the_company_zone() -> None:
    naive = parse_qbo_datetime("2025-11-02T01:30:00", NEW_YORK, entity="Invoice 1", field="MetaData")
    with_offset = parse_qbo_datetime(
        "2025-11-02T01:30:00-05:00", NEW_YORK, entity="Invoice 1", field="MetaData"
    )

    assert naive.utcoffset() is not None
    assert with_offset.isoformat() == "2025-11-02T01:30:00-05:00"
    with pytest.raises(MappingError, match="must be an ISO 8601 date-time"):
        parse_qbo_datetime("yesterday", NEW_YORK, entity="Invoice 1", field="MetaData")
