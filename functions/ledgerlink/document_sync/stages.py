"""What the deal's current stage asks of the books (pure): an Estimate, its Invoice, or nothing — and why.

Documents belong to the system they were born in: a deal that the deal sync made from a QBO estimate or
invoice (it carries a ``qbo_estimate_id`` / ``qbo_invoice_id`` LedgerLink did not create from this deal) is
the books' and is never written back, whatever its stage, so a stage the deal sync writes can never
start a document here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ledgerlink.configfile import DocumentStages
from ledgerlink.document_sync.deal import CrmDeal


class Action(StrEnum):
    ESTIMATE = "estimate"
    INVOICE = "invoice"
    NONE = "none"


@dataclass(frozen=True)
class Decided:
    action: Action
    reason: str


def decide(
    deal: CrmDeal,
    stages: Mapping[str, DocumentStages],
    *,
    own_keys: frozenset[str],
    claimed_stage: str | None = None,
) -> Decided:
    """The action for ``deal`` as it is now. ``own_keys`` are the ``<realm>:<Id>`` keys of the documents
    LedgerLink created from this deal; ``claimed_stage`` is what the webhook said the stage became."""
    where = f"stage {deal.stage or '(none)'} (pipeline {deal.pipeline})"
    claim = (
        f"; the webhook said {claimed_stage}, but the deal is now at {deal.stage or '(none)'}"
        if claimed_stage is not None and claimed_stage != deal.stage
        else ""
    )
    for kind, key in (("estimate", deal.estimate_key), ("invoice", deal.invoice_key)):
        if key and key not in own_keys:
            return Decided(
                Action.NONE,
                f"the deal came from QBO ({kind} {key}): the books own it, nothing is written back{claim}",
            )
    pipeline = stages.get(deal.pipeline)
    if pipeline is None:
        return Decided(
            Action.NONE, f"{where}: the pipeline has no quote or won stages in the configuration{claim}"
        )
    if deal.stage in pipeline.won_stages:
        return Decided(Action.INVOICE, f"{where} is a won stage{claim}")
    if deal.stage in pipeline.quote_stages:
        return Decided(Action.ESTIMATE, f"{where} is a quote stage{claim}")
    return Decided(
        Action.NONE,
        f"{where} is neither a quote stage ({', '.join(pipeline.quote_stages) or 'none'}) "
        f"nor a won stage ({', '.join(pipeline.won_stages) or 'none'}){claim}",
    )
