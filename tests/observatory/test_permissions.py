"""Every URL of the project, requested by a member of another team, leaks nothing of that team.

Path parameters are filled with the other team's objects (its team, product, a call, a key). A 200 page must not
show the other team's name or figures, nor may any other answer (a redirect, 400, 401, 403, 404 or 405). Admin pages are
Django's own; the OTLP and REST API endpoints authenticate with API keys, so a request without one (or with only
a session) must be refused.
"""

import re
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.observatory.test_dashboard_seed import ADS_MODEL, Seed, leaks_ads, seed

API_KEY_VIEWS = ("ingest.",)
SKIPPED_PREFIXES = ("admin/", "static/")
PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def all_patterns(patterns=None, prefix: str = ""):
    """(route, pattern) for every URL pattern, nested includes walked."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from all_patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def other_teams_values(data: Seed) -> dict[str, str]:
    from billing.models import Budget, Recommendation
    from observatory.digest import unsubscribe_token
    from observatory.models import Invitation, Membership
    from observatory.services import invite

    ads_call = data.ads_calls[0]
    budget, _ = Budget.objects.get_or_create(organization=data.ads.organization, team=data.ads, name="Ads monthly",
                                             defaults={"amount_usd": 100})
    rec, _ = Recommendation.objects.get_or_create(
        organization=data.ads.organization, fingerprint="failed_calls:ads", defaults={
            "kind": "failed_calls", "team": data.ads, "title": f"Ads failures on {ADS_MODEL}", "model": ADS_MODEL,
            "monthly_savings_usd": Decimal("7.77"), "evidence": {"cost_usd": "7.77"}})
    from gateway.models import UpstreamHost
    from gateway.rules import CachePolicy, RoutingRule

    rule, _ = RoutingRule.objects.get_or_create(organization=data.ads.organization, team=data.ads,
                                                from_model=ADS_MODEL, defaults={"to_model": "gpt-4o-mini"})
    policy, _ = CachePolicy.objects.get_or_create(organization=data.ads.organization, team=data.ads, feature="ads-secret-cache")
    host, _ = UpstreamHost.objects.get_or_create(organization=data.ads.organization, host="llm.internal")
    return {"rule_id": str(rule.id), "policy_id": str(policy.id), "host_id": str(host.id), "provider": "openai", "team_slug": data.ads.slug, "product_slug": data.ads_ranker.slug, "trace_id": ads_call.trace_id,
            "span_id": ads_call.span_id, "key_id": str(data.ads_key.id), "pk": str(budget.id),
            "budget_id": str(budget.id), "rec_id": str(rec.id), "pool_id": str(data.ads_pool.id), "kind": "chargeback",
            "team_id": str(data.ads.id), "product_id": str(data.ads_ranker.id),
            "membership_id": str(Membership.objects.get(team=data.ads).id),
            "invitation_id": str((Invitation.objects.filter(team=data.ads).first()
                                  or invite(data.ads.organization, "ads-hire@example.com", "viewer", data.ads, None).invitation).id),
            "token": unsubscribe_token(data.users["ads_viewer"], data.ads.organization)}


def fill(route: str, values: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        assert match.group(1) in values, f"{route}: add a value for <{match.group(1)}> to other_teams_values"
        return values[match.group(1)]

    return "/" + PARAMETER.sub(value, route)


def is_api(pattern: URLPattern) -> bool:
    view = getattr(pattern.callback, "view_class", pattern.callback)
    return view.__module__.startswith(API_KEY_VIEWS)


def test_the_walk_finds_the_dashboard_and_the_api(data):
    routes = [route for route, _ in all_patterns()]
    for expected in ("teams/<slug:team_slug>/", "calls/<str:trace_id>/<str:span_id>/", "settings/keys/<int:key_id>/revoke/",
                     "v1/traces", "api/v1/calls"):
        assert expected in routes


def test_no_page_shows_another_teams_data(client, data):
    values = other_teams_values(data)
    checked = 0
    for route, pattern in all_patterns():
        if route.startswith(SKIPPED_PREFIXES) or is_api(pattern):
            continue
        url = fill(route, values)
        for method, query in (("get", {}), ("get", {"format": "csv", "range": "30d"}), ("post", {})):
            data.login(client, "search_manager")
            response = getattr(client, method)(url, query)
            assert response.status_code in (200, 202, 302, 400, 401, 403, 404, 405), f"{method.upper()} {url}: {response.status_code}"
            assert leaks_ads(response.getvalue()) == [], f"{method.upper()} {url} {query} shows the other team's data"
            checked += 1
    assert checked >= 45
    assert data.ads_key.__class__.objects.get(pk=data.ads_key.pk).revoked_at is None


def test_the_other_teams_objects_are_404s(client, data):
    values = other_teams_values(data)
    client = data.login(client, "search_manager")
    for route in ("teams/<slug:team_slug>/", "products/<slug:product_slug>/", "calls/<str:trace_id>/<str:span_id>/"):
        assert client.get(fill(route, values)).status_code == 404
    assert client.post(fill("settings/keys/<int:key_id>/revoke/", values)).status_code == 404


def test_the_leak_check_would_catch_a_leak(client, data):
    response = data.login(client, "admin").get(fill("teams/<slug:team_slug>/", other_teams_values(data)))
    assert response.status_code == 200
    assert "147.63" in leaks_ads(response.content)


def test_api_key_endpoints_refuse_requests_without_a_key(client, data):
    routes = [(route, pattern) for route, pattern in all_patterns() if is_api(pattern)]
    assert len(routes) >= 5
    for route, _ in routes:
        url = fill(route, other_teams_values(data))
        for session in (False, True):
            client.logout()
            if session:
                data.login(client, "search_manager")
            response = client.post(url, b"{}", content_type="application/json")
            if session and route == "api/v1/calls":
                assert response.status_code == 403  # a person's session may read calls, never post them
            else:
                assert response.status_code in (401, 403), f"POST {url}: {response.status_code}"
        client.logout()
        assert client.get(url).status_code in (401, 403, 405)


def test_the_rest_api_lists_only_the_sessions_teams_calls(client, data):
    response = data.login(client, "search_manager").get("/api/v1/calls?page_size=1000")
    assert response.status_code == 200
    assert {call["team"] for call in response.json()["results"]} == {"search"}
