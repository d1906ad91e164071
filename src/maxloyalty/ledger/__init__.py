"""The points ledger: immutable transactions, expiring lots, allocations, idempotency."""
