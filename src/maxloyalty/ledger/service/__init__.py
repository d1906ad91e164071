"""The ledger rules, one module per concern."""
