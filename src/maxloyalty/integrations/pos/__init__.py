"""Tills: the generic POS API, R-Keeper FarCards, iiko."""
