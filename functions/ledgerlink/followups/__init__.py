"""The Teams flow (QBO → deal → due date → **Teams invite**): a payment follow-up meeting with the right
people when an unpaid invoice comes due or goes overdue, once per invoice and rule, cancelled when the
invoice is settled first. See docs/followups.md. The Lambda handler is ``teams_invite.handler``."""
