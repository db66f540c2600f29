"""The customer-facing Telegram bot: an app above the channels and the preference centre."""
