"""The dashboard in a real browser: sign in, change the range (htmx), drill down, open a trace, download a CSV,
and a screenshot of every main page in test-artifacts/screenshots/."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from django.db.models import Sum

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_changes_the_range_in_place_and_drills_into_a_team_and_a_trace(signed_in, live_server, month, screenshot):
    page = signed_in
    assert page.locator("h1").inner_text() == "Overview"
    assert page.locator(".ranges a.active").inner_text() == "30 days"
    screenshot("overview")

    page.evaluate("window.notReloaded = true")
    page.click(".ranges a[data-range='7d']")
    page.wait_for_url(re.compile(r"\?org=acme&range=7d$"))
    page.wait_for_selector(".ranges a.active[data-range='7d']")
    assert page.evaluate("window.notReloaded") is True  # htmx swapped the body; no full page load
    assert "Last 7 days" in page.locator(".period-label").inner_text()
    assert page.locator("#spend-by-team tbody tr").count() == 4

    page.click("details.custom summary")
    page.fill("input[name=start]", "2020-01-01")
    page.fill("input[name=end]", "2020-01-31")
    page.click(".custom-form button")
    page.wait_for_url(re.compile(r"range=custom&start=2020-01-01&end=2020-01-31"))
    page.wait_for_selector("#spend-by-team >> text=No calls in this range", state="detached")
    assert "Jan 01 – Jan 31, 2020" in page.locator(".period-label").inner_text()
    assert page.evaluate("window.notReloaded") is True
    page.go_back()
    page.wait_for_url(re.compile(r"\?org=acme&range=7d$"))

    page.click("#spend-by-team a:text-is('Search')")
    page.wait_for_url(re.compile(r"/teams/search/\?org=acme&range=7d$"))  # the range follows
    assert page.locator("h1").inner_text() == "Search"
    assert page.locator("#spend-by-product").is_visible()
    screenshot("team")

    page.goto(f"{live_server.url}/calls/?team=search&model=claude-sonnet-4-5-20250929")
    page.click("#calls-table tbody tr:first-child td:first-child a")
    page.wait_for_url(re.compile(r"/calls/[0-9a-f]{32}/[0-9a-f]{16}/"))
    rows = page.locator("#trace tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).inner_text().startswith("POST /api/answer")
    assert page.locator("#price-lines").is_visible()
    assert "How do I reset my password?" in page.locator("pre.content").first.inner_text()
    screenshot("call")


def test_it_downloads_the_spend_by_team_csv(signed_in, month):
    from django.utils import timezone

    from ingest.models import LLMCall
    from observatory.dashboard.filters import preset_period

    page = signed_in
    period = preset_period("30d", timezone.now())
    with page.expect_download() as download:
        page.click("a.csv")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    by_team = {row["team"]: Decimal(row["cost_usd"]) for row in rows}
    assert set(by_team) == {"Search", "Support", "Growth", "Platform"}
    support = LLMCall.objects.filter(team=month.teams["support"], start_time__gte=period.start).aggregate(c=Sum("cost_usd"))["c"]
    assert by_team["Support"] == support.quantize(Decimal("0.000001"))
    assert download.value.suggested_filename.startswith("acme-spend-by-team-")


def test_an_admin_creates_a_key_and_sees_it_once(signed_in, screenshot):
    from observatory.models import ApiKey

    page = signed_in
    page.click("nav.nav a[href^='/settings/']")
    page.fill("input[name=name]", "checkout-service")
    page.select_option("select[name=team]", "support")
    page.click(".new-key-form button[type=submit]")
    key = page.locator("#new-key-value").inner_text()
    assert re.search(r"/settings/\?org=acme$", page.url)  # the answer to the POST put the settings page in history
    assert key.startswith("obs_")
    screenshot("settings-new-key")
    page.reload()  # no "resubmit the form?": the reload is a GET, and the key is not shown again
    page.wait_for_url(re.compile(r"/settings/\?org=acme$"))
    assert page.locator("#new-key-value").count() == 0
    assert key not in page.content()
    assert page.locator("#api-keys tbody tr", has_text="checkout-service").count() == 1
    assert ApiKey.objects.filter(name="checkout-service").count() == 1
    page.click("nav.nav a[href^='/settings/']")
    page.wait_for_url(re.compile(r"/settings/\?org=acme&range=30d$"))
    assert page.locator("#new-key-value").count() == 0


def test_every_page_renders_with_its_charts(signed_in, screenshot):
    page = signed_in
    for name in ("models", "latency", "caching", "errors", "users", "calls", "prices", "gpu", "recommendations", "what-if", "settings"):
        page.click(f"nav.nav a[href^='/{name}/']")
        page.wait_for_url(re.compile(rf"/{name}/"))
        assert page.locator(".notice.warn").count() == 0
        for canvas in page.locator("canvas[data-chart]").all():
            assert canvas.bounding_box()["height"] > 100  # Chart.js drew into it
        if name == "settings":  # the spend-per-key card loads after the page, in place
            page.wait_for_selector("#key-spend-card >> text=No calls with these keys in the last 7 days")
            assert page.url.endswith("/settings/?org=acme&range=30d")
        screenshot(name)
    page.click("nav.teams a:text-is('Support')")
    page.click("#spend-by-product a:text-is('Helpdesk Bot')")
    page.wait_for_url(re.compile(r"/products/helpdesk-bot/"))
    assert page.locator("h1").inner_text() == "Helpdesk Bot"
    screenshot("product")
