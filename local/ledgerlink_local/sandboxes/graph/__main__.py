"""``python -m ledgerlink_local.sandboxes.graph --port N``: serve the sandbox until Ctrl-C."""

from ledgerlink_local.sandboxes.graph.sandbox import main

main()
