"""Document status (derived from QBO fields) and the configurable status → pipeline/stage map.

Invoice status, first rule that applies wins (docs/mapping.md#invoice-status):

1. ``voided``  — QBO voids zero the amounts and write "Voided" into PrivateNote, so: TotalAmt = 0
   and Balance = 0 and PrivateNote contains the word "voided" (any case); or TotalAmt = 0 and the
   caller saw a Void operation for this invoice (webhook or CDC).
2. ``paid``    — Balance = 0 (a zero-total invoice that is not voided counts as paid: nothing is owed).
3. ``overdue`` — Balance > 0 and DueDate is before today in the company's zone (the due date
   itself is the last day to pay on time).
4. ``partially_paid`` — 0 < Balance < TotalAmt.
5. ``open``    — Balance = TotalAmt.

Estimate status comes from TxnStatus (Pending, Accepted, Closed/Converted, Rejected); a pending
estimate whose ExpirationDate is before today is ``expired``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from ledgerlink.mapping.errors import MappingError, StageMapError


class InvoiceStatus(StrEnum):
    OPEN = "open"
    OVERDUE = "overdue"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOIDED = "voided"


# The statuses of an invoice that is still owed: it belongs on a calendar and may be followed up.
OWED_STATUSES = frozenset({InvoiceStatus.OPEN, InvoiceStatus.OVERDUE, InvoiceStatus.PARTIALLY_PAID})


class EstimateStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    CLOSED = "closed"
    REJECTED = "rejected"
    EXPIRED = "expired"


_VOIDED_WORD = re.compile(r"\bvoided\b", re.IGNORECASE)

_ESTIMATE_TXN_STATUS: dict[str, EstimateStatus] = {
    "pending": EstimateStatus.PENDING,
    "accepted": EstimateStatus.ACCEPTED,
    "closed": EstimateStatus.CLOSED,
    # QBO marks an estimate turned into an invoice "Closed"; some responses say "Converted".
    "converted": EstimateStatus.CLOSED,
    "rejected": EstimateStatus.REJECTED,
}


def is_voided(
    total: Decimal, balance: Decimal, private_note: str | None, *, void_operation_seen: bool = False
) -> bool:
    """QBO's void: the amounts are zeroed and "Voided" is written into the private note.

    Both halves are required, because a user can type "voided" into the note of a live
    invoice, and a legitimately zero invoice is not a void. A Void operation reported by QBO
    for this invoice replaces the note check (the note is user-editable after the void).
    """
    if total != 0 or balance != 0:
        return False
    return void_operation_seen or bool(private_note and _VOIDED_WORD.search(private_note))


def invoice_status(
    *,
    entity: str,
    total: Decimal,
    balance: Decimal,
    due_date: date | None,
    private_note: str | None,
    today: date,
    void_operation_seen: bool = False,
) -> InvoiceStatus:
    if balance < 0:
        raise MappingError(entity, "Balance", f"must not be negative, got {balance}")
    if total >= 0 and balance > total:
        raise MappingError(entity, "Balance", f"{balance} exceeds TotalAmt {total}")
    if is_voided(total, balance, private_note, void_operation_seen=void_operation_seen):
        return InvoiceStatus.VOIDED
    if balance == 0:
        return InvoiceStatus.PAID
    if due_date is not None and due_date < today:
        return InvoiceStatus.OVERDUE
    if balance < total:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.OPEN


def estimate_status(
    *, entity: str, txn_status: str | None, expiration_date: date | None, today: date
) -> EstimateStatus:
    key = (txn_status or "Pending").strip().lower()
    status = _ESTIMATE_TXN_STATUS.get(key)
    if status is None:
        known = ", ".join(sorted(k.capitalize() for k in _ESTIMATE_TXN_STATUS))
        raise MappingError(entity, "TxnStatus", f"unknown estimate status {txn_status!r} (known: {known})")
    if status is EstimateStatus.PENDING and expiration_date is not None and expiration_date < today:
        return EstimateStatus.EXPIRED
    return status


@dataclass(frozen=True)
class PipelineStage:
    pipeline: str
    stage: str


@dataclass(frozen=True)
class StageMap:
    """Where a deal goes in HubSpot for each document status (pipeline id + stage id).

    Build it from configuration with :meth:`from_config`; the shape is
    ``{"pipeline": "<id>", "stages": {"<status>": "<stage id>", ...}}`` where every status
    must be present, and any status may instead name its own pipeline:
    ``{"paid": {"pipeline": "<id>", "stage": "<stage id>"}}``.
    """

    by_status: Mapping[str, PipelineStage]

    def for_status(self, status: StrEnum) -> PipelineStage:
        try:
            return self.by_status[status.value]
        except KeyError:
            raise StageMapError(f"no pipeline stage configured for status {status.value!r}") from None

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], statuses: type[StrEnum], *, where: str = "stage map"
    ) -> StageMap:
        if not isinstance(raw, Mapping):
            raise StageMapError(f"{where}: must be an object with 'pipeline' and 'stages'")
        unknown_keys = set(raw) - {"pipeline", "stages"}
        if unknown_keys:
            raise StageMapError(f"{where}: unknown keys {sorted(unknown_keys)}")
        default_pipeline = raw.get("pipeline")
        if default_pipeline is not None and not _non_empty(default_pipeline):
            raise StageMapError(f"{where}.pipeline: must be a non-empty string")
        stages = raw.get("stages")
        if not isinstance(stages, Mapping):
            raise StageMapError(f"{where}.stages: must be an object keyed by status")
        allowed = {status.value for status in statuses}
        unknown = set(stages) - allowed
        if unknown:
            raise StageMapError(
                f"{where}.stages: unknown statuses {sorted(unknown)} (allowed: {sorted(allowed)})"
            )
        missing = allowed - set(stages)
        if missing:
            raise StageMapError(f"{where}.stages: missing statuses {sorted(missing)}")
        by_status: dict[str, PipelineStage] = {}
        for status in statuses:
            entry = stages[status.value]
            path = f"{where}.stages.{status.value}"
            if isinstance(entry, Mapping):
                pipeline, stage = entry.get("pipeline", default_pipeline), entry.get("stage")
            else:
                pipeline, stage = default_pipeline, entry
            if not _non_empty(pipeline):
                raise StageMapError(f"{path}: no pipeline (set {where}.pipeline or {path}.pipeline)")
            if not _non_empty(stage):
                raise StageMapError(f"{path}: stage must be a non-empty string")
            by_status[status.value] = PipelineStage(pipeline=str(pipeline).strip(), stage=str(stage).strip())
        return cls(by_status=MappingProxyType(by_status))


def _non_empty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


# Defaults that fit HubSpot's default sales pipeline ("default" and its built-in stage ids), so a
# fresh portal works; a dedicated invoice pipeline is better and is one configuration change away.
DEFAULT_INVOICE_STAGE_CONFIG: Mapping[str, Any] = MappingProxyType(
    {
        "pipeline": "default",
        "stages": {
            "open": "contractsent",
            "overdue": "contractsent",
            "partially_paid": "contractsent",
            "paid": "closedwon",
            "voided": "closedlost",
        },
    }
)
DEFAULT_ESTIMATE_STAGE_CONFIG: Mapping[str, Any] = MappingProxyType(
    {
        "pipeline": "default",
        "stages": {
            "pending": "presentationscheduled",
            "accepted": "decisionmakerboughtin",
            "closed": "closedwon",
            "rejected": "closedlost",
            "expired": "closedlost",
        },
    }
)


def default_invoice_stages() -> StageMap:
    return StageMap.from_config(DEFAULT_INVOICE_STAGE_CONFIG, InvoiceStatus, where="invoice stage map")


def default_estimate_stages() -> StageMap:
    return StageMap.from_config(DEFAULT_ESTIMATE_STAGE_CONFIG, EstimateStatus, where="estimate stage map")
