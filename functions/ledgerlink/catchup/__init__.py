"""The CDC catch-up flow: changes QBO recorded that no webhook brought (see :mod:`.service`)."""
