"""Every dashboard page in a real browser at 1440 px and at 390 px (a phone): the document never scrolls sideways,
no table is cut off by its card, the console stays free of errors, every link and form leads to a dashboard page
(never the JSON API, the admin, a static file or another site), and the phone menu folds away.

One seeded dataset and one signed-in browser for all pages: the pages are visited in a loop and every problem is
collected, so one run names all of them (page, width, what is wrong)."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.urls import Resolver404, resolve

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1440, 390)

# The table that cannot scroll and is wider than the box that clips it: its last columns are lost.
CLIPPED_TABLES = """() => [...document.querySelectorAll("table")].flatMap((table) => {
  for (let box = table.parentElement; box; box = box.parentElement) {
    const overflow = getComputedStyle(box).overflowX;
    if (overflow === "visible") continue;
    if ((overflow === "hidden" || overflow === "clip") && table.offsetWidth > box.clientWidth + 1) {
      return [`${table.id || "a table"} (${table.offsetWidth}px in ${box.clientWidth}px)`];
    }
    return [];
  }
  return [];
})"""

TARGETS = """() => [
  ...[...document.querySelectorAll("a[href]")].map((a) => a.href),
  ...[...document.querySelectorAll("form")].map((form) => form.action),
]"""


def link_problem(url: str, origin: str) -> str | None:
    """Why `url` is not a link to a dashboard page (None when it is one)."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != origin:
        return f"{url} leaves the site"
    try:
        match = resolve(parts.path)
    except Resolver404:
        return f"{url} is no page"
    name = match.url_name or ""
    if name.startswith("api-") or "admin" in match.namespaces or parts.path.startswith("/static/") or not name:
        return f"{url} is not a dashboard page ({match.view_name})"
    return None


@pytest.fixture
def pages(month, live_server, settings) -> dict[str, str]:
    """Every dashboard page, by name, with a budget (and its alerts) and recommendations to show. The site's address
    is the test server's, as a deployment's SITE_URL is its own (the digest's links are absolute, as in its email)."""
    settings.SITE_URL = live_server.url
    from billing.models import Budget
    from billing.recommendations import generate
    from billing.tasks import evaluate_all_budgets

    budget = Budget.objects.create(organization=month.organization, name="Search monthly", team=month.teams["search"],
                                   period="month", amount_usd=Decimal("40.00"), thresholds=[50, 80, 100])
    evaluate_all_budgets()
    generate(month.organization.pk)
    call = month.traced_call
    paths = {
        "overview": "/", "team": "/teams/search/", "product": "/products/helpdesk-bot/", "models": "/models/",
        "latency": "/latency/", "caching": "/caching/", "errors": "/errors/", "users": "/users/", "calls": "/calls/",
        "call": f"/calls/{call.trace_id}/{call.span_id}/", "prices": "/prices/", "gpu": "/gpu/", "budgets": "/budgets/",
        "budget": f"/budgets/{budget.pk}/", "alerts": "/alerts/", "recommendations": "/recommendations/",
        "what-if": "/what-if/", "settings": "/settings/", "digest": "/digest/",
        "gateway": "/settings/gateway/",
    }
    return {name: f"{live_server.url}{path}" for name, path in paths.items()}


def test_the_chosen_range_follows_a_click_to_models_and_latency(signed_in):
    page = signed_in
    page.click(".ranges a[data-range='7d']")
    page.wait_for_url(re.compile(r"range=7d"))
    page.wait_for_selector("nav.nav a[href='/models/?org=acme&range=7d']")  # the menu's links follow the new range
    for name in ("models", "latency"):
        page.click(f"nav.nav a[href^='/{name}/']")
        page.wait_for_url(re.compile(rf"/{name}/\?org=acme&range=7d$"))
        assert page.locator(".ranges a.active").inner_text() == "7 days"
        assert page.locator(".period-label").inner_text().startswith("Last 7 days")


def test_every_page_fits_both_widths_and_links_only_to_dashboard_pages(signed_in, live_server, pages):
    page = signed_in
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    problems: list[str] = []
    visited = 0
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in pages.items():
            errors.clear()
            response = page.goto(url)
            page.wait_for_load_state("networkidle")
            visited += 1
            where = f"{name} at {width}px"
            if response.status != 200:
                problems.append(f"{where}: status {response.status}")
            scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll_width > inner_width:
                problems.append(f"{where}: the page is {scroll_width}px wide in a {inner_width}px window")
            problems += [f"{where}: {table} is cut off" for table in page.evaluate(CLIPPED_TABLES)]
            problems += [f"{where}: console error {text}" for text in errors]
            for target in sorted(set(page.evaluate(TARGETS))):
                if (problem := link_problem(target, live_server.url)) is not None:
                    problems.append(f"{where}: {problem}")
    assert visited == 2 * 20  # every dashboard page of the fixture, at both widths
    assert problems == [], "\n".join(problems)


def test_on_a_phone_the_menu_folds_away_with_and_without_javascript(signed_in, browser, live_server, month):
    page = signed_in
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/models/")
    nav = page.locator("nav.nav[aria-label=Pages]")
    assert not nav.is_visible()
    assert page.locator("h1").bounding_box()["y"] < 120  # the title is on the first screen, not below the menu
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 246, 250)"  # light, behind the title
    assert page.evaluate("getComputedStyle(document.body).backgroundImage") == "none"  # no dark sidebar stripe behind it
    page.click("label.menu-button")
    assert nav.is_visible()
    page.click("nav.nav a[href^='/latency/']")
    page.wait_for_url(re.compile(r"/latency/"))
    assert not page.locator("nav.nav[aria-label=Pages]").is_visible()  # a new page starts folded

    without_js = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844},
                                     storage_state=page.context.storage_state())
    try:
        plain = without_js.new_page()
        plain.goto(f"{live_server.url}/caching/")
        assert not plain.locator("nav.nav[aria-label=Pages]").is_visible()
        plain.click("label.menu-button")
        assert plain.locator("nav.nav[aria-label=Pages]").is_visible()
        plain.click("nav.nav a[href^='/errors/']")
        assert plain.locator("h1").inner_text() == "Errors"
    finally:
        without_js.close()

    page.set_viewport_size({"width": 1440, "height": 900})
    assert nav.is_visible()  # the sidebar as before on a wide screen
    assert not page.locator("label.menu-button").is_visible()
