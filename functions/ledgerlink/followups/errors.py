"""Why a follow-up meeting cannot be made (classified by ledgerlink.consumer.failures)."""

from __future__ import annotations


class TeamsNotAllowed(ValueError):
    """The organizer's calendar offers no Teams meetings (``allowedOnlineMeetingProviders``): Graph would
    answer 201 with an ordinary event and no join link. Permanent for this record until the mailbox
    (licence, policy) or the configured organizer changes."""

    retryable = False
    reason = "teams_not_allowed"


class TeamsMeetingNotOnline(ValueError):
    """Graph created the event but not as a Teams meeting (no ``onlineMeeting.joinUrl``): LedgerLink
    cancelled it again (its attendees get the cancellation) and fails the record with that reason."""

    retryable = False
    reason = "teams_meeting_not_online"


class NoOrganizer(ValueError):
    """Neither the deal owner nor an accounts-receivable mailbox can organise the meeting."""

    retryable = False
    reason = "no_organizer"


class FollowUpWriteConflict(RuntimeError):
    """Another worker kept changing this follow-up while it was written: retry later."""

    retryable = True
    record_scoped = True
    reason = "followup_write_conflict"
