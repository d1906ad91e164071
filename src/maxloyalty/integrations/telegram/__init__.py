"""Each network's own Telegram bot: connecting it, its webhook, the chat with guests, and the
Mini App's `initData` checked with the network's token."""
