"""The pages people use: the guest cabinet (Telegram Mini App and plain web) and the cashier
page. Server-rendered Jinja2 with htmx; pages call the same services as the API."""
