"""Errors raised by the QBO → HubSpot deal mapping, beyond :class:`~ledgerlink.mapping.errors.MappingError`.

Every error names the QBO entity and the field at fault, so a dead-lettered message says what to fix.
None of them carries a secret: the mapping only ever sees accounting data.
"""

from __future__ import annotations

from ledgerlink.mapping.errors import MappingError


class UnsupportedCurrency(MappingError):
    """The document's currency is not enabled in the HubSpot portal.

    Sending the amount anyway would record it in the portal's company currency: a silently wrong
    number. The sync dead-letters the message instead; enabling the currency in HubSpot and
    replaying the message fixes it.
    """

    def __init__(self, entity: str, currency: str, portal_currencies: frozenset[str]) -> None:
        self.currency = currency
        self.portal_currencies = portal_currencies
        enabled = ", ".join(sorted(portal_currencies)) or "none"
        super().__init__(
            entity,
            "CurrencyRef",
            f"currency {currency} is not enabled in the HubSpot portal (enabled: {enabled})",
        )


class TotalMismatch(MappingError):
    """The mapped line items plus tax do not add up to the document's TotalAmt.

    Raised instead of writing line items that disagree with the deal amount, e.g. when QBO
    sends a line type this mapping does not know how to carry.
    """
