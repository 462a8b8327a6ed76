"""The QBO → HubSpot deal flow, fed by the deal-sync queue (Lambda ``functions/hubspot_deal_sync/``).

The batch (``service``: claims, realm grouping, isolation of failing records, settling) and one realm's
pass (``realm``: links, stale checks, QBO reads; ``customer_links`` and ``customers``: companies and
contacts; ``writes``: deals, line items, associations; ``published``: the ``ledgerlink.deal.synced``
event; ``documents``: what the pass records per invoice or estimate); the pure QBO → HubSpot mapping
(``mapping``, ``matching``, ``errors``; the rules are in docs/mapping.md); ``inbox`` (SQS record →
``ChangeEvent``), ``ports`` and ``factory``.

What the flows share comes from beside it, never from here: ``ledgerlink.consumer`` (batch, outcomes,
failures, idempotency ledger, dead letters, redelivery), ``ledgerlink.crosswalk`` (the links table),
``ledgerlink.mapping`` (HubSpot properties, stage maps), ``ledgerlink.dates`` and ``ledgerlink.money``.
Only the Lambda handler (and tests) import this package (tests/unit/test_layout.py).
"""
