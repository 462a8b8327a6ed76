"""Time handling for the Graph sandbox: Outlook's dateTimeTimeZone values and time-zone names.

Outlook accepts both Windows time-zone names ("Pacific Standard Time") and IANA names
("America/Los_Angeles") in ``start.timeZone`` / ``end.timeZone`` and in the
``Prefer: outlook.timezone`` header, and writes times as ``2017-04-15T11:00:00.0000000``
(seven fractional digits, no offset). Timestamps such as ``createdDateTime`` are UTC with a
``Z``. The Windows → IANA table below covers the zones of CLDR's ``windowsZones`` "001"
territory that users are likely to have; a name outside it and outside the IANA database is
rejected as Outlook rejects an unknown zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WINDOWS_TO_IANA: dict[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time": "America/Denver",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Central Standard Time": "America/Chicago",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Central America Standard Time": "America/Guatemala",
    "Canada Central Standard Time": "America/Regina",
    "Eastern Standard Time": "America/New_York",
    "US Eastern Standard Time": "America/Indiana/Indianapolis",
    "SA Pacific Standard Time": "America/Bogota",
    "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "Pacific SA Standard Time": "America/Santiago",
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "tzone://Microsoft/Utc": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "GTB Standard Time": "Europe/Bucharest",
    "FLE Standard Time": "Europe/Kyiv",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Israel Standard Time": "Asia/Jerusalem",
    "Egypt Standard Time": "Africa/Cairo",
    "Turkey Standard Time": "Europe/Istanbul",
    "Russian Standard Time": "Europe/Moscow",
    "Arab Standard Time": "Asia/Riyadh",
    "Arabian Standard Time": "Asia/Dubai",
    "Iran Standard Time": "Asia/Tehran",
    "Pakistan Standard Time": "Asia/Karachi",
    "India Standard Time": "Asia/Kolkata",
    "Nepal Standard Time": "Asia/Kathmandu",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "SE Asia Standard Time": "Asia/Bangkok",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Taipei Standard Time": "Asia/Taipei",
    "W. Australia Standard Time": "Australia/Perth",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
}

_WINDOWS_BY_LOWER = {name.lower(): iana for name, iana in WINDOWS_TO_IANA.items()}

# 2017-04-15T12:00:00, optionally with up to 7 fractional digits and an offset or Z.
_LOCAL_DATETIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<fraction>\d{1,7}))?(?P<offset>Z|[+-]\d{2}:\d{2})?$"
)


class TimeValueError(ValueError):
    """A dateTime string that does not parse."""


class UnknownTimeZoneError(ValueError):
    """A time-zone name Outlook would not accept; ``name`` is what the client sent."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def resolve_zone(name: str | None) -> tzinfo:
    """The zone for a Windows or IANA name (case-insensitive for Windows names)."""
    if not name or not name.strip():
        raise UnknownTimeZoneError(name or "")
    iana = _WINDOWS_BY_LOWER.get(name.strip().lower(), name.strip())
    if iana == "UTC":
        return UTC
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZoneError(name) from exc


def parse_datetime_value(value: str) -> tuple[datetime, bool]:
    """Parse an Outlook dateTime string; returns (datetime, has_explicit_offset).

    Without an offset the datetime is naive (to be read in the accompanying time zone).
    """
    found = _LOCAL_DATETIME.match(value.strip()) if isinstance(value, str) else None
    if found is None:
        raise TimeValueError(str(value))
    base = found["base"] if found["base"].count(":") == 2 else found["base"] + ":00"
    fraction = (found["fraction"] or "0")[:6].ljust(6, "0")  # Python keeps microseconds
    try:
        moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(microsecond=int(fraction))
    except ValueError as exc:
        raise TimeValueError(value) from exc
    offset = found["offset"]
    if offset is None:
        return moment, False
    if offset == "Z":
        return moment.replace(tzinfo=UTC), True
    sign = 1 if offset[0] == "+" else -1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return moment.replace(tzinfo=timezone(sign * delta)), True


@dataclass(frozen=True)
class ZonedTime:
    """One instant plus the zone name the client gave it in (kept for originalStartTimeZone)."""

    utc: datetime
    zone_name: str


def parse_date_time_time_zone(date_time: str, zone_name: str) -> ZonedTime:
    """A dateTimeTimeZone value as an instant: the wall time read in its zone (offset wins if given)."""
    zone = resolve_zone(zone_name)
    moment, has_offset = parse_datetime_value(date_time)
    if not has_offset:
        # fold=0: an ambiguous wall time (DST fall-back) means its first occurrence.
        moment = moment.replace(tzinfo=zone)
    return ZonedTime(utc=moment.astimezone(UTC), zone_name=zone_name)


def parse_instant(value: str) -> datetime:
    """A DateTimeOffset / query-string instant; no offset means UTC (as Graph documents for calendarView)."""
    moment, has_offset = parse_datetime_value(value)
    return moment.astimezone(UTC) if has_offset else moment.replace(tzinfo=UTC)


def format_local(moment_utc: datetime, zone_name: str) -> dict[str, str]:
    """A dateTimeTimeZone for output: wall time in ``zone_name`` with Outlook's 7 fractional digits."""
    local = moment_utc.astimezone(resolve_zone(zone_name))
    return {
        "dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}0",
        "timeZone": zone_name,
    }


def format_timestamp(moment: datetime) -> str:
    """A UTC timestamp as Outlook writes createdDateTime: 2017-04-15T03:00:50.7579581Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z"


def format_error_date(moment: datetime) -> str:
    """The ``innerError.date`` format: 2024-02-02T19:22:43 (UTC, no offset, no fraction)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
