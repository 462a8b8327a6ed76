"""HubSpot: the CRM client (batch upserts, search, associations v4, properties), portal setup, and
``webhooks`` (the v3 request signature and the delivery format the HubSpot ingest reads)."""
