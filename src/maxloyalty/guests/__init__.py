"""Guests: profiles, children, cards and the identifiers a cashier scans or types."""
