"""``python -m ledgerlink_local.sandboxes.hubspot --port N``: serve the sandbox until Ctrl-C."""

from ledgerlink_local.sandboxes.hubspot.sandbox import main

main()
