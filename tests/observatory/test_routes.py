"""Routes: every URL name is unique (a page and an API route sharing one sent "Send test alert" to the API browser),
and every form, button and link on every page goes to a dashboard route, never to the REST API."""

import re
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.urls import URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils import timezone

from billing.models import Budget
from tests.observatory.test_dashboard_savings import rec
from tests.observatory.test_dashboard_seed import Seed, seed


def named_routes(patterns, prefix: str = ""):
    """(name, route) of every named URL outside the namespaced apps (the admin names its own)."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if not pattern.namespace:
                yield from named_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif pattern.name:
            yield pattern.name, prefix + str(pattern.pattern)


def test_every_url_name_is_unique():
    routes = list(named_routes(get_resolver().url_patterns))
    counts = Counter(name for name, _ in routes)
    assert [(name, route) for name, route in routes if counts[name] > 1] == []
    assert len(routes) > 50


def test_every_api_route_is_named_as_one():
    assert [(name, route) for name, route in named_routes(get_resolver().url_patterns)
            if route.startswith("api/") and not name.startswith(("api-", "otlp-"))] == []


@pytest.fixture
def data(org, team, other_team) -> Seed:
    data = seed(org, team, other_team)
    Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=100,
                          email_recipients=["oncall@example.com"])
    rec(org, "failed", team=team)
    rec(org, "dismissed", team=team, status="dismissed")
    return data


TARGET = re.compile(r'\b(action|formaction|href|hx-get|hx-post|hx-delete|hx-put|hx-patch)="([^"]*)"')


def targets(html: str, page: str) -> list[tuple[str, str]]:
    """(attribute, path) of every place a page sends the browser or htmx, relative ones resolved against `page`."""
    found = []
    for attribute, value in TARGET.findall(html):
        value = value.replace("&amp;", "&")
        if value.startswith(("#", "mailto:", "http://", "https://")) or not value:
            continue
        path = urlsplit(value).path or page
        found.append((attribute, path))
    return found


def test_every_form_button_and_link_on_every_page_targets_a_dashboard_route(client, data):
    client = data.login(client, "admin")
    budget = Budget.objects.get(name="Search monthly")
    call = data.traced_call
    pages = ["/", "/teams/search/", "/products/answers/", "/models/", "/latency/", "/caching/", "/errors/", "/users/",
             "/calls/", f"/calls/{call.trace_id}/{call.span_id}/", "/prices/", "/gpu/", "/budgets/",
             f"/budgets/{budget.id}/", "/alerts/", "/recommendations/", "/recommendations/?status=all", "/what-if/",
             "/settings/", "/settings/gateway/"]
    wrong = []
    checked = 0
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        for attribute, path in targets(response.content.decode(), urlsplit(page).path):
            if path.startswith(("/static/", "/admin/")):
                continue
            checked += 1
            try:
                match = resolve(path)
            except Resolver404:
                wrong.append((page, attribute, path, "no route"))
                continue
            if path.startswith("/api/") or hasattr(match.func, "cls"):  # a REST API view
                wrong.append((page, attribute, path, match.url_name))
    assert wrong == []
    assert checked > 200


def test_the_test_alert_button_posts_to_the_budgets_page_route(client, data):
    client = data.login(client, "admin")
    budget = Budget.objects.get(name="Search monthly")
    page = client.get(f"/budgets/{budget.id}/").content.decode()
    assert f'action="/budgets/{budget.id}/test-alert/"' in page
    response = client.post(f"/budgets/{budget.id}/test-alert/")
    assert response.status_code == 302 and response["Location"].startswith(f"/budgets/{budget.id}/")


def test_the_savings_page_downloads_the_exports_through_its_own_route(client, data):
    client = data.login(client, "search_viewer")
    page = client.get("/recommendations/").content.decode()
    assert 'action="/recommendations/exports/chargeback/"' in page
    assert 'formaction="/recommendations/exports/focus/"' in page
    month = f"{timezone.now():%Y-%m}"
    download = client.get("/recommendations/exports/chargeback/", {"month": month, "format": "csv"})
    assert download.status_code == 200
    body = b"".join(download.streaming_content).decode()
    assert "search" in body and "ads-secret-model" not in body  # a team member's download: their team only
    assert client.get("/recommendations/exports/focus/", {"month": month, "format": "xlsx"}).status_code == 200
    assert client.get("/recommendations/exports/focus/", {"month": "soon"}).status_code == 400
    assert client.get("/recommendations/exports/other/", {"month": month}).status_code == 404
    assert client.post("/recommendations/exports/focus/", {"month": month}).status_code == 405


def test_every_page_links_to_alerts_and_has_a_favicon(client, org, team, other_team):
    data = seed(org, team, other_team)
    page = data.login(client, "admin").get("/alerts/?org=acme")
    html = page.content.decode()
    assert re.search(r'<a href="/alerts/\?[^"]*" class="active" aria-current="page">Alerts</a>', html)
    favicon = re.search(r'<link rel="icon" href="([^"]+)"', html).group(1)
    served = client.get(favicon)
    assert served.status_code == 200 and b"<svg" in b"".join(served.streaming_content)
    overview = client.get("/?org=acme").content.decode()
    assert re.search(r'<a href="/alerts/[^"]*"\s*>Alerts</a>', overview)
