"""Billing URLs: the REST API for budgets, alert rules, alerts and cost exports (included at the site root)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from billing import api

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("api/v1/budgets", api.BudgetViewSet, basename="budget")
router.register("api/v1/anomaly-rules", api.AnomalyRuleViewSet, basename="anomaly-rule")
router.register("api/v1/latency-slos", api.LatencySloViewSet, basename="latency-slo")
router.register("api/v1/alerts", api.AlertViewSet, basename="alert")
router.register("api/v1/recommendations", api.RecommendationViewSet, basename="recommendation")

urlpatterns = [
    *router.urls,
    path("api/v1/spend", api.SpendView.as_view(), name="spend"),
    path("api/v1/exports/chargeback", api.ChargebackExportView.as_view(), name="export-chargeback"),
    path("api/v1/exports/focus", api.FocusExportView.as_view(), name="export-focus"),
]
