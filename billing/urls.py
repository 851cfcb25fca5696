"""Billing URLs: the REST API for budgets, alert rules, alerts and cost exports (included at the site root). Every
name starts with `api-`, so no page shares a name with an API route."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from billing.api import alert_sources, costs, recommendations

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("api/v1/budgets", alert_sources.BudgetViewSet, basename="api-budget")
router.register("api/v1/anomaly-rules", alert_sources.AnomalyRuleViewSet, basename="api-anomaly-rule")
router.register("api/v1/latency-slos", alert_sources.LatencySloViewSet, basename="api-latency-slo")
router.register("api/v1/alerts", alert_sources.AlertViewSet, basename="api-alert")
router.register("api/v1/recommendations", recommendations.RecommendationViewSet, basename="api-recommendation")

urlpatterns = [
    *router.urls,
    path("api/v1/spend", costs.SpendView.as_view(), name="api-spend"),
    path("api/v1/exports/chargeback", costs.ChargebackExportView.as_view(), name="api-export-chargeback"),
    path("api/v1/exports/focus", costs.FocusExportView.as_view(), name="api-export-focus"),
]
