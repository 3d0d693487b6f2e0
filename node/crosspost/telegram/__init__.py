"""Telegram channels: the Bot API's HTML subset (format), its client (api), what one
queue row sends (send) and connecting a channel (connect)."""
