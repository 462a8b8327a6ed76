"""The calendar flow (QBO → HubSpot deal → **Outlook due date**): each owed invoice's due date as one
all-day event on the right Outlook calendar, moved with the invoice and removed when it is settled.
See docs/calendar-sync.md. The Lambda handler is ``outlook_calendar_sync.handler``."""
