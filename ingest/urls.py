"""Ingest URLs (OTLP/HTTP receiver and REST call API)."""

urlpatterns: list = []
