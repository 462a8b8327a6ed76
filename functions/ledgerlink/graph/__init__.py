"""Microsoft Graph, app-only: the client-credentials token of a connection's app (:mod:`.auth`), the
Outlook calendar calls the calendar and Teams flows make (:mod:`.client`), and their errors
(:mod:`.errors`). Every call goes through the shared HTTP layer (docs/http-layer.md)."""
