"""Graph's ``dateTimeTimeZone`` values, to and from aware datetimes.

A ``dateTimeTimeZone`` is ``{"dateTime": "2019-03-15T12:00:00.0000000", "timeZone": "Pacific Standard
Time"}``: a wall time with no offset (Outlook writes seven fractional digits) and the zone it is read in
(https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone). LedgerLink sends instants as
UTC wall times with ``timeZone: "UTC"`` and asks for answers in UTC (``Prefer: outlook.timezone="UTC"``,
which is also Graph's default), so what it reads back is UTC; an IANA zone name is read too. A Windows
zone name in an answer is refused rather than guessed at: LedgerLink never asks for one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The names Outlook writes for UTC (the last is what Exchange reports for events created in UTC).
UTC_NAMES: Final = frozenset({"utc", "coordinated universal time", "tzone://microsoft/utc", "etc/utc"})

# 2019-03-15T12:00:00 with up to seven fractional digits; an offset or Z is tolerated (it then wins).
_DATE_TIME: Final = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<fraction>\d{1,7}))?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})?$"
)


def zone_named(name: str) -> tzinfo:
    """The zone for a ``timeZone`` value: UTC (any of Outlook's names for it) or an IANA name."""
    cleaned = (name or "").strip()
    if cleaned.lower() in UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time zone {name!r} is neither UTC nor an IANA zone name") from None


def parse_date_time(text: str, zone: tzinfo) -> datetime:
    """An Outlook ``dateTime`` string read in ``zone``, as an aware UTC datetime. The seventh fractional
    digit (Outlook's 100 ns ticks) is below Python's microseconds and dropped."""
    found = _DATE_TIME.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not a dateTime such as 2019-03-15T12:00:00.0000000")
    base = found["base"] if found["base"].count(":") == 2 else found["base"] + ":00"
    micro = int((found["fraction"] or "0")[:6].ljust(6, "0"))
    moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(microsecond=micro)
    offset = found["offset"]
    if offset == "Z":
        return moment.replace(tzinfo=UTC)
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        return moment.replace(tzinfo=timezone(sign * delta)).astimezone(UTC)
    # fold=0: an ambiguous wall time (the hour repeated when DST ends) is its first occurrence.
    return moment.replace(tzinfo=zone).astimezone(UTC)


def from_date_time_time_zone(value: Mapping[str, Any]) -> datetime:
    """A ``dateTimeTimeZone`` as an aware UTC datetime (ValueError when it cannot be read)."""
    if not isinstance(value, Mapping):
        raise ValueError("a dateTimeTimeZone must be an object with dateTime and timeZone")
    return parse_date_time(str(value.get("dateTime") or ""), zone_named(str(value.get("timeZone") or "UTC")))


def to_date_time_time_zone(moment: datetime) -> dict[str, str]:
    """An aware datetime as a UTC ``dateTimeTimeZone`` (what LedgerLink sends for an instant)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"an instant for Graph must carry an offset, got naive {moment.isoformat()}")
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return {"dateTime": text, "timeZone": "UTC"}
