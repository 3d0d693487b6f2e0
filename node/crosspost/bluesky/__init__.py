"""Bluesky accounts through the AT Protocol: the post record (format), XRPC calls to
the account's PDS (xrpc), what one queue row does (send) and connecting (connect)."""
