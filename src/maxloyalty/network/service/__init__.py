"""The network rules, one module per concern."""
