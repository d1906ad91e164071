"""The guests rules, one module per concern."""
