"""LedgerLink: the one shared package behind every Lambda (domain core, ports, vendor clients, events, config)."""

__version__ = "0.1.0"
