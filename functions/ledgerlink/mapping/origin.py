"""Where a QBO document came from: the marks that say a HubSpot deal caused it ("CRM-born").

Both flows rely on these (docs/mapping.md#crm-born-documents): the HubSpot → QBO document flow writes
:func:`origin_marker` into the ``PrivateNote`` of the Estimate or Invoice it creates for a deal and
records the document's crosswalk link with ``origin`` = :data:`ORIGIN_HUBSPOT`; the QBO → HubSpot deal
sync reads either mark (:func:`origin_deal`, the link) and lands the document on that deal instead of
a deal of its own. The note covers a QBO webhook that arrives before the link is written.

Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final

# The crosswalk link's ``origin`` of a document LedgerLink created in QBO for a HubSpot deal.
ORIGIN_HUBSPOT: Final = "hubspot"

# Deal and portal ids are HubSpot's numeric ids; the text around them is fixed, so a user's own words
# in the note cannot be mistaken for a mark unless they copy it exactly.
_MARKER: Final = re.compile(r"LedgerLink: HubSpot deal ([0-9]+) \(portal ([0-9]+)\)")


def origin_marker(deal_id: str, portal_id: str) -> str:
    """The text the HubSpot → QBO flow writes into a document's ``PrivateNote`` for deal ``deal_id``."""
    if not deal_id.isdigit() or not deal_id.isascii():
        raise ValueError(f"a HubSpot deal id is digits, got {deal_id!r}")
    if not portal_id.isdigit() or not portal_id.isascii():
        raise ValueError(f"a HubSpot portal id is digits, got {portal_id!r}")
    return f"LedgerLink: HubSpot deal {deal_id} (portal {portal_id})"


def origin_deal(private_note: str | None, portal_id: str) -> str | None:
    """The deal id of the first marker in ``private_note`` written for ``portal_id``, else None.

    The marker may be anywhere in the note (QBO prefixes a voided document's note, users add their
    own words). A marker for another portal is another connection's deal: it is not this one's.
    """
    if not private_note or not portal_id:
        return None
    for match in _MARKER.finditer(private_note):
        if match.group(2) == portal_id:
            return match.group(1)
    return None
