"""Developer scripts (not shipped with the package)."""
