"""QuickBooks Online: webhook signature and parsing (``webhooks``); REST client and OAuth beside it."""
