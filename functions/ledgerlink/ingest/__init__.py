"""Domain of the QBO ingest Lambda: verify a webhook delivery, parse it, archive it, publish its changes.

``service.ingest_delivery`` is the one entry point; it reaches the world only through the ports in
``ports`` (the raw-delivery archive, the event publisher, the verifier token), whose AWS adapters are
``archive.S3RawArchive`` and ``ledgerlink.publisher.EventBridgePublisher`` and whose in-memory fakes
are in ``fakes``.
"""
