"""Errors of the configuration/mapping layer, shared by every flow that maps one vendor's records to another's.

Every :class:`MappingError` names the entity and the field at fault, so a dead-lettered message says
what to fix; the flows raise subclasses for their own rules (e.g. ``ledgerlink.deal_sync.errors``). None
of them carries a secret: a mapping only ever sees accounting and CRM data.
"""

from __future__ import annotations


class MappingError(ValueError):
    """An entity cannot be mapped faithfully; the message names the entity and the field."""

    retryable = False  # the same document maps the same way until someone changes it

    def __init__(self, entity: str, field: str, problem: str) -> None:
        self.entity = entity
        self.field = field
        self.problem = problem
        super().__init__(f"{entity} {field}: {problem}")


class StageMapError(ValueError):
    """A status → pipeline/stage configuration is incomplete or malformed; the message names the key."""
