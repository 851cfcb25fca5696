"""Every REST API route, requested with a key of another team and a key of another organization, shows nothing of
the Ads team: not its calls, spend, exports, budgets (with their recipients and webhooks), rules, SLOs, alerts or
recommendations. A team key reads its own team, everywhere; keys change nothing.
"""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from billing.models import Alert, AnomalyRule, Budget, LatencySlo, Recommendation
from observatory.models import Organization
from observatory.services import create_api_key
from tests.observatory.test_dashboard_seed import ADS_CALL_COST, ADS_MODEL, Seed, leaks_ads, seed
from tests.observatory.test_permissions import all_patterns

ADS_SLUGS = ('"ads"', '"ads-ranker"', "ads-oncall@example.com", "hooks.ads.example")


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


@pytest.fixture
def ads_objects(data) -> dict[str, int]:
    """One of each configuration object of the Ads team, with an alert each; {router basename: its id}."""
    org, ads, ranker = data.org, data.ads, data.ads_ranker
    channels = {"email_recipients": ["ads-oncall@example.com"], "webhook_url": "https://hooks.ads.example/alert",
                "webhook_secret": "ads-secret-0123456789abcdef"}
    budget = Budget.objects.create(organization=org, team=ads, name="Ads monthly", amount_usd=100, **channels)
    product_budget = Budget.objects.create(organization=org, product=ranker, name="Ads Ranker weekly", amount_usd=50,
                                           period="weekly", **channels)
    rule = AnomalyRule.objects.create(organization=org, team=ads, name="Ads spend spikes", **channels)
    slo = LatencySlo.objects.create(organization=org, product=ranker, name="Ads Ranker p99", limit_ms=900, **channels)
    rec = Recommendation.objects.create(
        organization=org, fingerprint="failed_calls:ads", kind="failed_calls", team=ads, title=f"Ads failures on {ADS_MODEL}",
        model=ADS_MODEL, monthly_savings_usd=Decimal("7.77"), evidence={"cost_usd": "7.77"})
    now = timezone.now()
    alerts = [Alert.objects.create(organization=org, kind=kind, period_start=now - timedelta(hours=1), period_end=now,
                                   title=f"Ads alert {kind}", message="Ads spent 147.63", deliver_until=now,
                                   **{field: source})
              for kind, field, source in (("threshold", "budget", budget), ("threshold", "budget", product_budget),
                                          ("anomaly", "anomaly_rule", rule), ("latency", "latency_slo", slo))]
    return {"budget": budget.id, "anomaly-rule": rule.id, "latency-slo": slo.id, "recommendation": rec.id,
            "alert": alerts[0].id}


def api_routes() -> list[tuple[str, str]]:
    return [(route, pattern.name or "") for route, pattern in all_patterns() if route.startswith("api/v1/")]


def url_of(route: str, name: str, ids: dict[str, int]) -> str:
    if "<" not in route:
        return "/" + route
    basename = next(base for base in ids if name.startswith(f"api-{base}-"))
    return "/" + route.split("<")[0] + str(ids[basename]) + route.split(">", 1)[1]


def text_of(response) -> str:
    body = response.getvalue()
    if response.get("Content-Type", "").startswith("application/vnd.openxmlformats"):
        sheet = load_workbook(io.BytesIO(body)).active
        return "\n".join(" ".join(str(cell) for cell in row) for row in sheet.iter_rows(values_only=True))
    return body.decode()


def leaks(response) -> list[str]:
    text = text_of(response)
    return leaks_ads(text.encode()) + [slug for slug in ADS_SLUGS if slug in text]


QUERIES = {
    "api/v1/spend": [{}, {"group_by": "team,product,model"}, {"group_by": "feature,environment", "interval": "day"}],
    "api/v1/exports/chargeback": [{"month": f"{timezone.now():%Y-%m}", "format": kind} for kind in ("csv", "json", "xlsx")],
    "api/v1/exports/focus": [{"month": f"{timezone.now():%Y-%m}", "format": kind} for kind in ("csv", "json", "xlsx")],
    "api/v1/calls": [{"page_size": 1000}, {"team": "ads"}, {"model": ADS_MODEL}],
}


def keys(data) -> dict[str, dict]:
    globex = Organization.objects.create(name="Globex", slug="globex")
    return {
        "search team key": {"HTTP_AUTHORIZATION": f"Bearer {create_api_key(data.org, 'read', team=data.search).plaintext}"},
        "other organization's key": {"HTTP_X_API_KEY": create_api_key(globex, "theirs").plaintext},
    }


@pytest.mark.django_db
def test_no_api_read_shows_another_teams_or_organizations_data(client, data, ads_objects):
    routes = api_routes()
    assert len(routes) >= 20
    checked = 0
    for who, auth in keys(data).items():
        for route, name in routes:
            url = url_of(route, name, ads_objects)
            for query in QUERIES.get(route, [{}]):
                response = client.get(url, query, **auth)
                assert response.status_code in (200, 400, 403, 404, 405), f"{who}: GET {url} {query}: {response.status_code}"
                assert leaks(response) == [], f"{who}: GET {url} {query} shows the Ads team's data"
                checked += 1
    assert checked >= 60


@pytest.mark.django_db
def test_no_api_write_with_a_key_changes_anything(client, data, ads_objects):
    for who, auth in keys(data).items():
        for route, name in api_routes():
            url = url_of(route, name, ads_objects)
            for method in ("post", "patch", "put", "delete"):
                response = getattr(client, method)(url, {"name": "taken", "status": "dismissed"},
                                                   content_type="application/json", **auth)
                assert response.status_code in (400, 403, 404, 405), f"{who}: {method.upper()} {url}: {response.status_code}"
    assert Budget.objects.filter(name="Ads monthly").count() == 1
    assert AnomalyRule.objects.get(pk=ads_objects["anomaly-rule"]).name == "Ads spend spikes"
    assert Recommendation.objects.get(pk=ads_objects["recommendation"]).status == "open"


@pytest.mark.django_db
def test_a_team_key_reads_its_own_team_everywhere(client, data, ads_objects):
    auth = keys(data)["search team key"]
    search_cost = sum((c.cost_usd or 0 for c in data.search_calls), Decimal(0))
    spend = client.get("/api/v1/spend", {"group_by": "team"}, **auth).json()
    assert [row["team"] for row in spend["rows"]] == ["search"]
    assert Decimal(spend["total"]["cost_usd"]) == search_cost
    calls = client.get("/api/v1/calls", {"page_size": 1000}, **auth).json()["results"]
    assert {call["team"] for call in calls} == {"search"}
    assert len(calls) == len(data.search_calls) + len(data.unknown_calls)
    assert client.get("/api/v1/budgets", **auth).json() == []
    assert client.get(f"/api/v1/budgets/{ads_objects['budget']}/status", **auth).status_code == 404


@pytest.mark.django_db
def test_a_key_without_a_team_reads_its_whole_organization(client, data, ads_objects):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {create_api_key(data.org, 'org-wide').plaintext}"}
    spend = client.get("/api/v1/spend", {"group_by": "team"}, **auth).json()
    ads_row = next(row for row in spend["rows"] if row["team"] == "ads")
    assert Decimal(ads_row["cost_usd"]) == ADS_CALL_COST * (len(data.ads_calls) - 1)
    assert sorted(b["name"] for b in client.get("/api/v1/budgets", **auth).json()) == ["Ads Ranker weekly", "Ads monthly"]
    assert len(client.get("/api/v1/alerts", **auth).json()["results"]) == 4


@pytest.mark.django_db
def test_the_walk_would_catch_a_leak(client, data, ads_objects):
    """The org-wide key sees the Ads team, so the same checks flag it: the walk can fail."""
    auth = {"HTTP_AUTHORIZATION": f"Bearer {create_api_key(data.org, 'org-wide').plaintext}"}
    for url in ("/api/v1/budgets", "/api/v1/alerts", "/api/v1/recommendations", f"/api/v1/latency-slos/{ads_objects['latency-slo']}"):
        assert leaks(client.get(url, **auth)) != [], url
