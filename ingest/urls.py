"""Ingest URLs: the OTLP/HTTP receiver (standard and Langfuse-style paths) and the REST call API."""

from django.urls import path

from ingest import api, feedback_api, views

urlpatterns = [
    path("v1/traces", views.otlp_traces, name="otlp-traces"),
    path("v1/metrics", views.otlp_metrics, name="otlp-metrics"),
    path("v1/logs", views.otlp_logs, name="otlp-logs"),
    path("api/public/otel/v1/traces", views.otlp_traces, name="otlp-traces-langfuse"),
    path("api/v1/calls", api.CallListCreate.as_view(), name="api-calls"),
    path("api/v1/feedback", feedback_api.FeedbackCreate.as_view(), name="api-feedback"),
]
