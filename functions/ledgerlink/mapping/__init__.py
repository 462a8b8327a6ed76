"""The configuration/mapping layer shared by the flows and by ``hubspot setup``.

``properties`` (the HubSpot custom properties LedgerLink writes), ``stages`` (document status and the
status → pipeline/stage map), ``origin`` (the marks of a QBO document created for a HubSpot deal) and
``errors`` (:class:`~ledgerlink.mapping.errors.MappingError` and the
stage-map error). It imports no flow: the flows (``ledgerlink.deal_sync`` and those to come) import it.
"""
