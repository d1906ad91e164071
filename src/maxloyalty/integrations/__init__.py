"""Adapters to outside systems: SMS, Telegram, tills, webhooks."""
