"""What every queue-fed flow shares: one SQS batch parsed, synced and settled (``batch``), the outcome of
each record (``outcome``), what a failure means for the batch (``failures``), one idempotency claim per
event (``ledger``), dead letters that say why (``deadletter``), each retried record's own delay
(``redelivery``), and the wiring of the router from settings (``factory``).

It imports no flow: the flows (``ledgerlink.deal_sync`` and those to come) import it.
"""
