"""Which document a deal's stage asks for, and why nothing is written otherwise."""

from __future__ import annotations

from dataclasses import replace

from ledgerlink.configfile import DEFAULT_DOCUMENT_STAGES, DocumentStages
from ledgerlink.document_sync.deal import CrmDeal
from ledgerlink.document_sync.stages import Action, decide

DEAL = CrmDeal(
    id="91001",
    name="Website",
    stage="contractsent",
    pipeline="default",
    amount=None,
    currency="USD",
    owner_id=None,
    estimate_key="",
    invoice_key="",
    lines=(),
    company=None,
    contacts=(),
)


def test_the_default_pipelines_contract_sent_quotes_and_closed_won_invoices() -> None:
    assert decide(DEAL, DEFAULT_DOCUMENT_STAGES, own_keys=frozenset()).action is Action.ESTIMATE
    won = replace(DEAL, stage="closedwon")
    assert decide(won, DEFAULT_DOCUMENT_STAGES, own_keys=frozenset()).action is Action.INVOICE


def test_another_stage_asks_for_nothing_and_names_the_stages_that_would() -> None:
    decided = decide(replace(DEAL, stage="qualifiedtobuy"), DEFAULT_DOCUMENT_STAGES, own_keys=frozenset())
    assert decided.action is Action.NONE
    assert "contractsent" in decided.reason and "closedwon" in decided.reason


def test_a_stage_the_webhook_claimed_but_the_deal_left_is_said_in_the_reason() -> None:
    decided = decide(
        replace(DEAL, stage="appointmentscheduled"),
        DEFAULT_DOCUMENT_STAGES,
        own_keys=frozenset(),
        claimed_stage="contractsent",
    )
    assert decided.action is Action.NONE
    assert "the webhook said contractsent" in decided.reason


def test_stages_are_per_pipeline() -> None:
    stages = {"7001": DocumentStages(quote_stages=("7003",), won_stages=("7004",))}
    in_custom = replace(DEAL, pipeline="7001", stage="7004")
    assert decide(in_custom, stages, own_keys=frozenset()).action is Action.INVOICE
    assert decide(DEAL, stages, own_keys=frozenset()).action is Action.NONE


def test_a_deal_the_books_made_is_never_written_back_whatever_its_stage() -> None:
    from_qbo = replace(DEAL, stage="closedwon", estimate_key="9341:130")
    decided = decide(from_qbo, DEFAULT_DOCUMENT_STAGES, own_keys=frozenset())
    assert decided.action is Action.NONE and "came from QBO" in decided.reason
    # ... but a deal whose estimate LedgerLink made from it goes on to its invoice.
    assert (
        decide(from_qbo, DEFAULT_DOCUMENT_STAGES, own_keys=frozenset({"9341:130"})).action is Action.INVOICE
    )
