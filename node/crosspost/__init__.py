"""Posts beyond the fediverse (issue 27): each public post of a connected actor also on
its Telegram channel and its Bluesky account, with its own queue beside the fan-out log
(docs/ARCHITECTURE.md §2c)."""
