"""The HubSpot -> QBO flow (Lambda ``qbo_document_sync``): a QBO Estimate when a deal reaches a quote stage,
its Invoice when the deal is won (docs/document-sync.md)."""
