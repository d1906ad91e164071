"""Tenants (restaurant networks), their restaurants and points of sale."""
