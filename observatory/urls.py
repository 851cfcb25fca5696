"""URL configuration: dashboard, admin, OTLP ingest, REST API and health endpoints."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from observatory import health, views

urlpatterns = [
    path("", include("ingest.urls")),  # first: OTLP exporters post here many times a second
    path("", views.overview, name="home"),
    path("teams/<slug:team_slug>/", views.team_page, name="team"),
    path("products/<slug:product_slug>/", views.product_page, name="product"),
    path("models/", views.models, name="models"),
    path("latency/", views.latency, name="latency"),
    path("caching/", views.caching, name="caching"),
    path("errors/", views.errors, name="errors"),
    path("users/", views.users, name="users"),
    path("calls/", views.calls, name="calls"),
    path("calls/<str:trace_id>/<str:span_id>/", views.call_detail, name="call"),
    path("prices/", views.prices, name="prices"),
    path("gpu/", views.gpu, name="gpu"),
    path("gpu/pools/", views.save_gpu_pool, name="add-gpu-pool"),
    path("gpu/pools/<int:pool_id>/", views.save_gpu_pool, name="gpu-pool"),
    path("gpu/pools/<int:pool_id>/delete/", views.delete_gpu_pool, name="delete-gpu-pool"),
    path("budgets/", views.budgets, name="budgets"),
    path("budgets/<int:budget_id>/", views.budget_page, name="budget"),
    path("budgets/<int:budget_id>/delete/", views.delete_budget, name="delete-budget"),
    path("budgets/<int:budget_id>/test-alert/", views.budget_test_alert, name="budget-test-alert"),
    path("alerts/", views.alerts, name="alerts"),
    path("recommendations/", views.recommendations, name="recommendations"),
    path("recommendations/refresh/", views.refresh_recommendations, name="refresh-recommendations"),
    path("recommendations/<int:rec_id>/status/", views.recommendation_status, name="recommendation-status"),
    path("what-if/", views.what_if, name="what-if"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/keys/", views.create_key, name="create-key"),
    path("settings/keys/spend/", views.key_spend, name="key-spend"),
    path("settings/keys/<int:key_id>/revoke/", views.revoke_key, name="revoke-key"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("", include("billing.urls")),
]
