"""The privacy rules, one module per concern."""
