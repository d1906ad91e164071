"""The event types the platform publishes, the list endpoints subscribe from.

A test reads every `publish(...)` call in the source and fails when one names a type that is
missing here, so this list cannot fall behind the code."""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "restaurant.created": "A restaurant was added to the network.",
    "restaurant.updated": "A restaurant's details changed.",
    "guest.created": "A guest joined the network and got a card.",
    "card.status_changed": "A card was blocked, unblocked or closed.",
    "card.level_changed": "A card moved to another level.",
    "transaction.created": "Points moved: a sale, a redemption, a manual operation, a reward.",
    "transaction.reversed": "A check was refunded: its points were reversed.",
    "points.birthday": "A birthday bonus was credited.",
    "points.expiring": "Points of a card expire soon.",
}
