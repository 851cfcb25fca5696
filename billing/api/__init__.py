"""The billing REST API, one module per resource family (routes in billing/urls.py)."""
