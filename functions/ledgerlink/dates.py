"""Dates and times between QBO and HubSpot, computed in the company's time zone.

QBO transaction dates (TxnDate, DueDate, ServiceDate, ExpirationDate) are calendar dates in the
company's own zone, with no time and no offset. QBO timestamps (MetaData.LastUpdatedTime) carry
an offset. HubSpot has two kinds of time properties (HubSpot developer FAQ "How should
timestamps be formatted for HubSpot's APIs"):

- ``date`` properties store a calendar date and must be set to midnight UTC of that date, as
  Unix epoch milliseconds; any other time of day is an error;
- ``datetime`` properties store an instant, as Unix epoch milliseconds.

So a calendar date goes to HubSpot zone-free (midnight UTC of the same date, whatever the
company's zone), and an instant goes as the exact epoch milliseconds. Only "which day is it
now?" and "when does this day start?" depend on the company's zone; both are answered here with
zoneinfo, so daylight-saving transitions never move a date.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from ledgerlink.mapping.errors import MappingError

# QBO writes xs:date; in JSON it is "YYYY-MM-DD", the XML form may append a zone ("2025-03-09-05:00").
_QBO_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?$")


def require_aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must carry a time-zone offset, got naive {moment.isoformat()}")
    return moment


def company_today(now: datetime, zone: ZoneInfo) -> date:
    """The calendar date in the company's zone at the instant ``now``."""
    return require_aware(now, "now").astimezone(zone).date()


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, with its real offset.

    Where a daylight-saving gap swallows midnight (e.g. America/Santiago), the day starts at
    the first wall-clock time that exists; the round trip through UTC finds it.
    """
    naive_midnight = datetime.combine(day, time(0, 0), tzinfo=zone)
    return naive_midnight.astimezone(UTC).astimezone(zone)


def epoch_ms(moment: datetime) -> int:
    """Unix epoch milliseconds of an aware datetime (exact: integer arithmetic on the timedelta)."""
    delta = require_aware(moment, "moment") - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def hubspot_date(day: date) -> str:
    """A HubSpot ``date`` property value: midnight UTC of the date, in epoch milliseconds."""
    return str(epoch_ms(datetime.combine(day, time(0, 0), tzinfo=UTC)))


def hubspot_datetime(moment: datetime) -> str:
    """A HubSpot ``datetime`` property value: the instant in epoch milliseconds."""
    return str(epoch_ms(moment))


def parse_qbo_date(value: object, *, entity: str, field: str) -> date:
    text = str(value).strip() if value is not None else ""
    match = _QBO_DATE.match(text)
    if not match:
        raise MappingError(entity, field, f"must be a date YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise MappingError(entity, field, f"is not a real calendar date: {value!r}") from None


def optional_qbo_date(value: object, *, entity: str, field: str) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_qbo_date(value, entity=entity, field=field)


def parse_qbo_datetime(value: object, zone: ZoneInfo, *, entity: str, field: str) -> datetime:
    """A QBO timestamp such as "2025-03-09T01:30:00-08:00" as an aware datetime.

    QBO always sends the offset; a timestamp without one is read in the company's zone (the
    zone QBO shows it in) rather than guessed as UTC.
    """
    text = str(value).strip() if value is not None else ""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MappingError(entity, field, f"must be an ISO 8601 date-time, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed
