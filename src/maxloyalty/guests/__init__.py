"""Guests: profiles, children, cards and the identifiers a cashier scans or types."""

# Registers the listener that publishes a card's changes: whatever loads a card imports
# this package first, so no path can change a balance unheard.
from maxloyalty.guests import live as live
