"""When a follow-up is due: the connection's rules (``follow_up`` in the configuration file).

- ``before_due_<N>``: the invoice is within N days of its due date (from N days before it, through the
  due date itself);
- ``past_due_<M>``: the invoice is M or more days past its due date.

Each rule fires once per invoice. Days are calendar days in the company's time zone. A rule is
*entered* on one day (due - N, due + M): the sweep looks for invoices whose rule was entered since it
last ran; an event (calendar.synced) checks whether a rule is in force now, which also catches an
invoice created already overdue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from ledgerlink.configfile import FollowUpSettings

BEFORE_DUE: Final = "before_due"
PAST_DUE: Final = "past_due"
RULE_ID: Final = re.compile(r"^(before_due|past_due)_([0-9]{1,3})$")


@dataclass(frozen=True)
class FollowUpRule:
    kind: str
    days: int

    @property
    def id(self) -> str:
        return f"{self.kind}_{self.days}"

    @classmethod
    def parse(cls, rule_id: str) -> FollowUpRule:
        match = RULE_ID.match(rule_id)
        if match is None:
            raise ValueError(f"not a follow-up rule: {rule_id!r}")
        return cls(match.group(1), int(match.group(2)))

    def entered_on(self, due: date) -> date:
        """The day an invoice due on ``due`` enters this rule."""
        return due - timedelta(days=self.days) if self.kind == BEFORE_DUE else due + timedelta(days=self.days)

    def due_date_entering_on(self, day: date) -> date:
        """The due date of the invoices that enter this rule on ``day``."""
        return day + timedelta(days=self.days) if self.kind == BEFORE_DUE else day - timedelta(days=self.days)

    def in_force(self, due: date, today: date) -> bool:
        """True when the rule applies today to an unpaid invoice due on ``due``."""
        if self.kind == BEFORE_DUE:
            # "Due soon" is for invoices not yet overdue: once past due, the past-due rules take over.
            return self.entered_on(due) <= today <= due
        return today >= self.entered_on(due)

    def describe(self) -> str:
        if self.kind == BEFORE_DUE:
            return f"{self.days} day{'s' if self.days != 1 else ''} before the due date"
        return f"{self.days} day{'s' if self.days != 1 else ''} past the due date"


def rules_of(settings: FollowUpSettings) -> tuple[FollowUpRule, ...]:
    return (
        *(FollowUpRule(BEFORE_DUE, days) for days in sorted(set(settings.days_before_due))),
        *(FollowUpRule(PAST_DUE, days) for days in sorted(set(settings.days_past_due))),
    )
