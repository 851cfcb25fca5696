"""URL configuration: dashboard, admin, OTLP ingest, REST API and health endpoints."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from observatory import health
from observatory.views import budgets, calls, digest, gpu, people, routing, savings, spend, tenancy

urlpatterns = [
    path("", include("ingest.urls")),  # first: OTLP exporters post here many times a second
    path("", spend.overview, name="home"),
    path("teams/<slug:team_slug>/", spend.team_page, name="team"),
    path("products/<slug:product_slug>/", spend.product_page, name="product"),
    path("models/", spend.models, name="models"),
    path("latency/", spend.latency, name="latency"),
    path("caching/", spend.caching, name="caching"),
    path("errors/", spend.errors, name="errors"),
    path("users/", spend.users, name="users"),
    path("calls/", calls.calls, name="calls"),
    path("calls/<str:trace_id>/<str:span_id>/", calls.call_detail, name="call"),
    path("prices/", calls.prices, name="prices"),
    path("gpu/", gpu.gpu, name="gpu"),
    path("gpu/pools/", gpu.save_gpu_pool, name="add-gpu-pool"),
    path("gpu/pools/<int:pool_id>/", gpu.save_gpu_pool, name="gpu-pool"),
    path("gpu/pools/<int:pool_id>/delete/", gpu.delete_gpu_pool, name="delete-gpu-pool"),
    path("budgets/", budgets.budgets, name="budgets"),
    path("budgets/<int:budget_id>/", budgets.budget_page, name="budget"),
    path("budgets/<int:budget_id>/delete/", budgets.delete_budget, name="delete-budget"),
    path("budgets/<int:budget_id>/test-alert/", budgets.budget_test_alert, name="budget-test-alert"),
    path("alerts/", budgets.alerts, name="alerts"),
    path("recommendations/", savings.recommendations, name="recommendations"),
    path("recommendations/refresh/", savings.refresh_recommendations, name="refresh-recommendations"),
    path("recommendations/<int:rec_id>/status/", savings.recommendation_status, name="recommendation-status"),
    path("recommendations/exports/<slug:kind>/", savings.download_export, name="download-export"),
    path("recommendations/<int:rec_id>/canary/", routing.apply_canary, name="apply-canary"),
    path("routing/<int:rule_id>/", routing.canary_page, name="canary"),
    path("routing/<int:rule_id>/change/", routing.change_canary, name="change-canary"),
    path("what-if/", savings.what_if, name="what-if"),
    path("what-if/models/", savings.what_if_models, name="what-if-models"),
    path("settings/", tenancy.settings_page, name="settings"),
    path("settings/keys/", tenancy.create_key, name="create-key"),
    path("settings/keys/spend/", tenancy.key_spend, name="key-spend"),
    path("settings/keys/<int:key_id>/revoke/", tenancy.revoke_key, name="revoke-key"),
    path("settings/teams/", people.create_team, name="create-team"),
    path("settings/teams/<int:team_id>/", people.rename_team, name="rename-team"),
    path("settings/products/", people.create_product, name="create-product"),
    path("settings/products/<int:product_id>/", people.change_product, name="change-product"),
    path("settings/invitations/", people.invite, name="invite"),
    path("settings/invitations/<int:invitation_id>/revoke/", people.revoke_invitation, name="revoke-invitation"),
    path("settings/members/<int:membership_id>/role/", people.change_role, name="change-role"),
    path("settings/members/<int:membership_id>/remove/", people.remove_member, name="remove-member"),
    path("invite/<str:token>/", people.accept_invitation, name="accept-invitation"),
    path("digest/", digest.digest_page, name="digest"),
    path("digest/preferences/", digest.digest_preferences, name="digest-preferences"),
    path("digest/test/", digest.digest_test, name="digest-test"),
    path("digest/slack/", digest.digest_slack, name="digest-slack"),
    path("digest/unsubscribe/<str:token>/", digest.unsubscribe, name="digest-unsubscribe"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("", include("billing.urls")),
]

handler500 = "observatory.errors.server_error"
