"""The identity rules, one module per concern."""
