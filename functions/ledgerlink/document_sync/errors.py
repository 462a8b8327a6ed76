"""Why a deal's QBO document cannot be written (classified by :mod:`ledgerlink.consumer.failures`).

Each names the deal and what to fix; none carries a secret. Permanent ones fail their record only
(never the batch): another deal's document is written as usual.
"""

from __future__ import annotations


class DocumentRefused(ValueError):
    """The deal cannot become a QBO document as it stands (a line without an item, a currency the company
    does not have, ...). Permanent until someone changes the deal, the books or the configuration."""

    retryable = False

    def __init__(self, deal_id: str, problem: str, *, reason: str = "document_refused") -> None:
        self.deal_id = deal_id
        self.problem = problem
        self.reason = reason
        super().__init__(f"deal {deal_id}: {problem}")


class UnmatchedItem(DocumentRefused):
    """A line item whose SKU and name match no QBO item, and no default item is configured."""

    def __init__(self, deal_id: str, problem: str) -> None:
        super().__init__(deal_id, problem, reason="unmatched_item")


class MissingTaxCode(DocumentRefused):
    """Outside the US every line needs a QBO tax code; this one has none LedgerLink can resolve."""

    def __init__(self, deal_id: str, problem: str) -> None:
        super().__init__(deal_id, problem, reason="missing_tax_code")


class CurrencyNotInCompany(DocumentRefused):
    """The deal's currency is not one the QBO company (or its customer) uses; nothing is converted."""

    def __init__(self, deal_id: str, problem: str) -> None:
        super().__init__(deal_id, problem, reason="currency_not_in_company")


class EstimateNotLinkable(DocumentRefused):
    """The deal's estimate is Closed or Rejected (or QBO did not keep the link): QBO ignores a link to such an
    estimate without an error, so the invoice would silently stand alone."""

    def __init__(self, deal_id: str, problem: str) -> None:
        super().__init__(deal_id, problem, reason="estimate_not_linkable")


class DocumentWriteConflict(RuntimeError):
    """Someone kept changing the estimate in QBO (Fault 5010 after every re-read): retry later."""

    retryable = True
    record_scoped = True
    reason = "document_write_conflict"


class DocNumbersExhausted(DocumentRefused):
    """Every DocNumber tried was taken (Fault 6140): the numbering in the configuration needs attention."""

    def __init__(self, deal_id: str, problem: str) -> None:
        super().__init__(deal_id, problem, reason="doc_numbers_exhausted")
