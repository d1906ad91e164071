"""Outbound webhooks to tenants' own systems, signed per the Standard Webhooks spec."""
