"""HubSpot: the CRM client (batch upserts, search, associations v4, properties) and portal setup."""
