"""The configurable status → pipeline/stage map (docs/mapping.md#statuses-and-stages)."""

from __future__ import annotations

from typing import Any

import pytest

from ledgerlink.mapping.errors import StageMapError
from ledgerlink.mapping.stages import (
    EstimateStatus,
    InvoiceStatus,
    PipelineStage,
    StageMap,
    default_estimate_stages,
    default_invoice_stages,
)

COMPLETE: dict[str, Any] = {
    "pipeline": "qbo-invoices",
    "stages": {"open": "a", "overdue": "b", "partially_paid": "c", "paid": "d", "voided": "e"},
}


def test_every_status_has_a_stage_in_the_defaults() -> None:
    invoice_stages = default_invoice_stages()
    estimate_stages = default_estimate_stages()

    assert {status: invoice_stages.for_status(status).stage for status in InvoiceStatus} == {
        InvoiceStatus.OPEN: "contractsent",
        InvoiceStatus.OVERDUE: "contractsent",
        InvoiceStatus.PARTIALLY_PAID: "contractsent",
        InvoiceStatus.PAID: "closedwon",
        InvoiceStatus.VOIDED: "closedlost",
    }
    assert {estimate_stages.for_status(status).pipeline for status in EstimateStatus} == {"default"}


def test_configuration_is_read_with_per_status_pipelines() -> None:
    raw = {**COMPLETE, "stages": {**COMPLETE["stages"], "voided": {"pipeline": "archive", "stage": "void"}}}

    stages = StageMap.from_config(raw, InvoiceStatus)

    assert stages.for_status(InvoiceStatus.OPEN) == PipelineStage("qbo-invoices", "a")
    assert stages.for_status(InvoiceStatus.VOIDED) == PipelineStage("archive", "void")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {**COMPLETE, "stages": {k: v for k, v in COMPLETE["stages"].items() if k != "paid"}},
            "missing statuses",
        ),
        (
            {**COMPLETE, "stages": {**COMPLETE["stages"], "refunded": "x"}},
            "unknown statuses \\['refunded'\\]",
        ),
        (
            {**COMPLETE, "stages": {**COMPLETE["stages"], "open": " "}},
            "stages.open: stage must be a non-empty",
        ),
        ({"stages": COMPLETE["stages"]}, "stages.open: no pipeline"),
        ({**COMPLETE, "colour": "blue"}, "unknown keys \\['colour'\\]"),
        ({"pipeline": "p", "stages": ["open"]}, "stages: must be an object keyed by status"),
        ("default", "must be an object with 'pipeline' and 'stages'"),
    ],
)
def test_bad_configuration_names_the_key(raw: Any, message: str) -> None:
    with pytest.raises(StageMapError, match=message):
        StageMap.from_config(raw, InvoiceStatus, where="invoice stage map")
