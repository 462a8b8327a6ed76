"""``python -m ledgerlink_local.sandboxes.qbo --port N``: serve the sandbox until Ctrl-C."""

from ledgerlink_local.sandboxes.qbo.sandbox import main

main()
