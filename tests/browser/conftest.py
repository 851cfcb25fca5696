"""Browser tests: Playwright drives Debian's Chromium (/usr/bin/chromium) against pytest-django's live server.

Playwright's own browser download is never used. Without /usr/bin/chromium (or with -p no:playwright) the
browser tests are skipped, saying why.
The dataset is two months of calls of four teams, so the screenshots look like a real morning's dashboard.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE.parents[1] / "test-artifacts" / "screenshots"
PASSWORD = "pw-123456!"

# team, product, feature, provider, model, response model, calls per day, input, output, latency ms, cached share, error rate
WORKLOADS = (
    ("search", "web-search", "query-rewrite", "openai", "gpt-4o", "gpt-4o-2024-08-06", 14, 9000, 400, 650, 0.2, 0.01),
    ("search", "answers", "answer", "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 9, 60000, 1500, 4200, 0.6, 0.03),
    ("support", "helpdesk-bot", "reply", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 20, 30000, 900, 1400, 0.4, 0.02),
    ("growth", "email-writer", "draft", "openai", "gpt-4.1", "gpt-4.1-2025-04-14", 6, 16000, 3000, 5200, 0.0, 0.04),
    ("platform", "internal-tools", "code-review", "openai", "o4-mini", "o4-mini-2025-04-16", 4, 70000, 9000, 9000, 0.0, 0.02),
    ("growth", "email-writer", "draft", "mistral", "mistral-large-2411", "mistral-large-2411", 2, 12000, 2000, 2600, 0.0, 0.01),
)
PRICES = {  # USD per 1M tokens: input, cached input, output
    "gpt-4o": ("2.50", "1.25", "10"), "claude-sonnet-4-5": ("3", "0.30", "15"), "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "gpt-4.1": ("2", "0.50", "8"), "o4-mini": ("1.10", "0.275", "4.40"),
}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API keeps an event loop running in the main thread until the
    session ends, and asyncio tests after it would fail. Skipped, saying why, without Chromium or the plugin."""
    browser = [item for item in items if item.path.is_relative_to(HERE)]
    items[:] = [item for item in items if not item.path.is_relative_to(HERE)] + browser
    if not CHROMIUM.exists():
        reason = "browser tests need Debian's chromium at /usr/bin/chromium: apt-get install -y chromium"
    elif not config.pluginmanager.hasplugin("playwright"):
        reason = "browser tests need the pytest-playwright plugin (disabled with -p no:playwright)"
    else:
        return
    for item in browser:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}, "accept_downloads": True}


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot of the current page as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@dataclass
class Month:
    organization: object
    teams: dict
    traced_call: object
    username: str = "alice"


def _month_of_calls(organization, teams, products, prices) -> list:
    from billing.pricing.calls import CallUsage, price_call
    from billing.pricing.rows import spec_from_price
    from ingest.models import LLMCall

    rng = random.Random(5)
    now = timezone.now()
    calls = []
    for day in range(60):
        trend = 0.7 + 0.5 * (60 - day) / 60
        for (team, product, feature, provider, model, response_model, per_day, input_tokens, output_tokens, latency,
             cached_share, error_rate) in WORKLOADS:
            for _ in range(max(1, int(rng.gauss(per_day * trend, per_day * 0.2)))):
                start = now - timedelta(days=day, seconds=rng.uniform(60, 86_400))
                usage = CallUsage(input_tokens=int(input_tokens * rng.uniform(0.5, 1.5)),
                                  output_tokens=int(output_tokens * rng.uniform(0.5, 1.5)))
                cached = int(usage.input_tokens * rng.uniform(0.5, 0.9)) if rng.random() < cached_share else 0
                usage = CallUsage(input_tokens=usage.input_tokens, cached_input_tokens=cached, output_tokens=usage.output_tokens)
                price = prices.get(model)
                failed = rng.random() < error_rate
                calls.append(LLMCall(
                    organization=organization, trace_id=f"{len(calls) + 1:032x}", span_id=f"{len(calls) + 1:016x}",
                    start_time=start, duration_ms=rng.lognormvariate(0, 0.45) * latency, provider=provider, operation="chat",
                    request_model=model, response_model=response_model, input_tokens=usage.input_tokens,
                    cached_input_tokens=cached, output_tokens=usage.output_tokens, team=teams[team], product=products[product],
                    feature=feature, environment="production", status="error" if failed else "ok",
                    error_type=rng.choice(["RateLimitError", "RateLimitError", "APITimeoutError"]) if failed else "",
                    http_status=429 if failed else None, streaming=model.startswith("claude"),
                    ttft_ms=latency * rng.uniform(0.08, 0.2) if model.startswith("claude") else None,
                    cost_usd=price_call(usage, spec_from_price(price)).total if price else None,
                    cost_status="priced" if price else "unknown_model", price_id=price.id if price else None,
                    end_user=f"user-{rng.randint(1, 80)}", session=f"session-{rng.randint(1, 400)}",
                ))
    return calls


@pytest.fixture
def month(transactional_db) -> Month:
    """An organization with four teams and two months of calls, rolled up; alice is its org-wide admin."""
    from billing.models import AttributionRule, GpuCostHour, GpuPool, Price
    from billing.rollups import rollup_pending
    from ingest.models import CallContent, LLMCall, TraceSpan
    from observatory.models import Membership, Organization, Product, Role, Team
    from observatory.services import create_api_key

    organization = Organization.objects.create(name="Acme Corp", slug="acme")
    teams = {slug: Team.objects.create(organization=organization, name=slug.capitalize(), slug=slug)
             for slug in ("search", "support", "growth", "platform")}
    products = {}
    for team, product, *_ in WORKLOADS:
        if product not in products:
            products[product] = Product.objects.create(organization=organization, team=teams[team], slug=product,
                                                       name=product.replace("-", " ").title())
    million = Decimal(1_000_000)
    prices = {model: Price.objects.get(provider="anthropic" if model.startswith("claude") else "openai", key=model,
                                       effective_to=None)  # the catalog's, loaded by migrate
              for model in PRICES}
    assert {model: (p.input, p.cached_input_read, p.output) for model, p in prices.items()} == {
        model: (Decimal(i) / million, Decimal(c) / million, Decimal(o) / million) for model, (i, c, o) in PRICES.items()}
    calls = _month_of_calls(organization, teams, products, prices)
    LLMCall.objects.bulk_create(calls)
    traced = max((c for c in calls if c.request_model.startswith("claude") and c.status == "ok"), key=lambda c: c.start_time)
    root = "f" * 16
    LLMCall.objects.filter(span_id=traced.span_id).update(parent_span_id=root)
    TraceSpan.objects.bulk_create([
        TraceSpan(organization=organization, trace_id=traced.trace_id, span_id=root, name="POST /api/answer",
                  team_id=traced.team_id, start_time=traced.start_time - timedelta(milliseconds=180),
                  duration_ms=traced.duration_ms + 260),
        TraceSpan(organization=organization, trace_id=traced.trace_id, span_id="e" * 16, parent_span_id=root,
                  team_id=traced.team_id, name="vector search", start_time=traced.start_time - timedelta(milliseconds=160),
                  duration_ms=120.0),
    ])
    CallContent.objects.create(organization=organization, trace_id=traced.trace_id, span_id=traced.span_id,
                               start_time=traced.start_time, input_content="How do I reset my password?",
                               output_content="Open Settings → Security and choose “Reset password”.")
    rollup_pending()
    pool = GpuPool.objects.create(organization=organization, name="llama-pool", gpu_model="A100", gpu_count=4,
                                  hourly_usd_per_gpu=Decimal("2.2000"), owner_team=teams["platform"],
                                  served_models=["llama-3.1-70b"])
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    GpuCostHour.objects.bulk_create([
        row for h in range(1, 72) for row in (
            GpuCostHour(organization=organization, pool=pool, hour=hour - timedelta(hours=h), team=teams["platform"],
                        cost_usd=Decimal("5.20"), gpu_seconds=8500, basis="utilization"),
            GpuCostHour(organization=organization, pool=pool, hour=hour - timedelta(hours=h), team=teams["search"],
                        cost_usd=Decimal("1.40"), gpu_seconds=2300, basis="utilization"),
            GpuCostHour(organization=organization, pool=pool, hour=hour - timedelta(hours=h), is_idle=True,
                        cost_usd=Decimal("2.20"), gpu_seconds=3600, basis="utilization"),
        )
    ])
    AttributionRule.objects.create(organization=organization, field="service_name", pattern="helpdesk-*",
                                   team=teams["support"], product=products["helpdesk-bot"])
    alice = get_user_model().objects.create_user("alice", password=PASSWORD)
    Membership.objects.create(user=alice, organization=organization, team=None, role=Role.ADMIN)
    for slug, name in (("search", "vera"), ("support", "sam")):
        member = get_user_model().objects.create_user(name, password=PASSWORD)
        Membership.objects.create(user=member, organization=organization, team=teams[slug], role=Role.MANAGER)
    create_api_key(organization, "search-prod", team=teams["search"], created_by=alice)
    create_api_key(organization, "support-bot", team=teams["support"], product=products["helpdesk-bot"], created_by=alice)
    return Month(organization=organization, teams=teams, traced_call=traced)


@pytest.fixture
def signed_in(page, live_server, month):
    """The page, signed in as alice through the login form."""
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", month.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page
