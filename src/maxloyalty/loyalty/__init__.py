"""Loyalty programmes and levels: how much a purchase earns and what a guest's level is."""
