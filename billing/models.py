"""Billing data: prices (filled by the billing issue)."""
