"""The time-zone name Outlook is sent for a company's IANA zone.

Graph's ``dateTimeTimeZone.timeZone`` takes a Windows zone name, or an IANA name from a listed subset
only, and Microsoft warns that create and update may not accept every zone
(https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone). Windows names are accepted
everywhere, so LedgerLink sends the Windows name of the company's zone: the mapping below follows
CLDR's windowsZones data (the IANA zones a company is likely to have, each to its Windows zone). For a
zone not in it, a connection can name the Windows zone itself (``calendar.outlook_time_zone`` in the
configuration file); otherwise the IANA name is sent, which Graph accepts only when it is on its list
(an assumption, said in docs/calendar-sync.md). All-day events must start and end at midnight *in the
zone sent*, so the zone, not a UTC instant, is what keeps a due date on its day across DST changes.
"""

from __future__ import annotations

from typing import Final

_WINDOWS_ZONES: Final[dict[str, tuple[str, ...]]] = {
    "Hawaiian Standard Time": ("Pacific/Honolulu",),
    "Alaskan Standard Time": ("America/Anchorage", "America/Juneau"),
    "Pacific Standard Time": ("America/Los_Angeles", "America/Vancouver"),
    "US Mountain Standard Time": ("America/Phoenix",),
    "Mountain Standard Time": ("America/Denver", "America/Edmonton", "America/Boise"),
    "Central Standard Time": ("America/Chicago", "America/Winnipeg"),
    "Central Standard Time (Mexico)": ("America/Mexico_City", "America/Monterrey"),
    "Canada Central Standard Time": ("America/Regina",),
    "Eastern Standard Time": ("America/New_York", "America/Toronto", "America/Detroit"),
    "US Eastern Standard Time": ("America/Indiana/Indianapolis",),
    "SA Pacific Standard Time": ("America/Bogota", "America/Lima"),
    "Atlantic Standard Time": ("America/Halifax",),
    "Newfoundland Standard Time": ("America/St_Johns",),
    "E. South America Standard Time": ("America/Sao_Paulo",),
    "Argentina Standard Time": ("America/Argentina/Buenos_Aires",),
    "Pacific SA Standard Time": ("America/Santiago",),
    "UTC": ("UTC", "Etc/UTC"),
    "GMT Standard Time": ("Europe/London", "Europe/Dublin", "Europe/Lisbon"),
    "Greenwich Standard Time": ("Atlantic/Reykjavik",),
    "W. Europe Standard Time": (
        "Europe/Berlin",
        "Europe/Amsterdam",
        "Europe/Rome",
        "Europe/Vienna",
        "Europe/Zurich",
        "Europe/Stockholm",
        "Europe/Oslo",
    ),
    "Romance Standard Time": ("Europe/Paris", "Europe/Brussels", "Europe/Madrid", "Europe/Copenhagen"),
    "Central Europe Standard Time": ("Europe/Budapest", "Europe/Prague"),
    "Central European Standard Time": ("Europe/Warsaw",),
    "GTB Standard Time": ("Europe/Athens", "Europe/Bucharest"),
    "FLE Standard Time": (
        "Europe/Helsinki",
        "Europe/Kyiv",
        "Europe/Riga",
        "Europe/Tallinn",
        "Europe/Vilnius",
    ),
    "Turkey Standard Time": ("Europe/Istanbul",),
    "Russian Standard Time": ("Europe/Moscow",),
    "South Africa Standard Time": ("Africa/Johannesburg",),
    "W. Central Africa Standard Time": ("Africa/Lagos",),
    "Egypt Standard Time": ("Africa/Cairo",),
    "Israel Standard Time": ("Asia/Jerusalem",),
    "Arabian Standard Time": ("Asia/Dubai",),
    "Arab Standard Time": ("Asia/Riyadh",),
    "Iran Standard Time": ("Asia/Tehran",),
    "Pakistan Standard Time": ("Asia/Karachi",),
    "India Standard Time": ("Asia/Kolkata", "Asia/Calcutta"),
    "Nepal Standard Time": ("Asia/Kathmandu",),
    "Bangladesh Standard Time": ("Asia/Dhaka",),
    "SE Asia Standard Time": ("Asia/Bangkok", "Asia/Jakarta", "Asia/Ho_Chi_Minh"),
    "China Standard Time": ("Asia/Shanghai", "Asia/Hong_Kong"),
    "Singapore Standard Time": ("Asia/Singapore", "Asia/Kuala_Lumpur", "Asia/Manila"),
    "Taipei Standard Time": ("Asia/Taipei",),
    "Tokyo Standard Time": ("Asia/Tokyo",),
    "Korea Standard Time": ("Asia/Seoul",),
    "W. Australia Standard Time": ("Australia/Perth",),
    "Cen. Australia Standard Time": ("Australia/Adelaide",),
    "AUS Central Standard Time": ("Australia/Darwin",),
    "E. Australia Standard Time": ("Australia/Brisbane",),
    "AUS Eastern Standard Time": ("Australia/Sydney", "Australia/Melbourne"),
    "New Zealand Standard Time": ("Pacific/Auckland",),
}

WINDOWS_ZONE_OF: Final[dict[str, str]] = {
    iana: windows for windows, zones in _WINDOWS_ZONES.items() for iana in zones
}


def outlook_zone(iana: str, override: str | None = None) -> str:
    """The ``timeZone`` to send Graph for a company in ``iana`` (see the module docstring)."""
    if override:
        return override
    return WINDOWS_ZONE_OF.get(iana, iana)
