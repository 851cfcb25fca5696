"""The dashboard tests' dataset: two teams' calls with known costs and latencies, rolled up — and checks that
the rollups the pages read agree with those calls.

Search (the viewer's team) has priced gpt-4o calls with cached tokens, errors, an app-cache hit, streaming
calls with TTFT, a trace with context spans, and three calls of a model without a price. Ads (the other team)
has calls of its own model with distinctive figures ($7.77 each), a GPU pool, a key and a rule, so a page that
leaks them is easy to catch. Five calls have no team (unattributed, $1.00 each).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.utils import timezone

from billing.models import AttributionRule, GpuCostHour, GpuPool, Price
from billing.pricing.calls import CallUsage, price_call
from billing.pricing.rows import spec_from_price
from billing.queries import total
from billing.rollups import rollup_pending
from ingest.models import CallContent, LLMCall, TraceSpan
from observatory.access import Scope
from observatory.models import Membership, Product, Role
from observatory.services import create_api_key

ADS_CALL_COST = Decimal("7.77")
ADS_MODEL = "ads-secret-model"
ADS_PRODUCT = "Ads Ranker"


@dataclass
class Seed:
    org: object
    search: object
    ads: object
    answers: object
    ads_ranker: object
    search_calls: list
    ads_calls: list
    unattributed_calls: list
    unknown_calls: list
    price: Price
    traced_call: LLMCall
    users: dict
    ads_key: object
    search_key: object
    ads_pool: GpuPool
    shared_pool: GpuPool

    def login(self, client, who: str):
        client.force_login(self.users[who])
        return client


def user(name: str, org, team, role: str):
    account = get_user_model().objects.create_user(name)  # no password: tests log in with force_login
    Membership.objects.create(user=account, organization=org, team=team, role=role)
    return account


def money(value: Decimal) -> str:
    """A total as the pages show it: $ and two decimals with thousands separators."""
    return f"${value.quantize(Decimal('0.01')):,}"


def seed(org, team, other_team) -> Seed:
    now = timezone.now()
    rng = random.Random(11)
    answers = Product.objects.create(organization=org, team=team, name="Answers", slug="answers")
    ads_ranker = Product.objects.create(organization=org, team=other_team, name=ADS_PRODUCT, slug="ads-ranker")
    price = Price.objects.get(provider="openai", key="gpt-4o", effective_to=None)  # the catalog's, loaded by migrate
    assert (price.input, price.output, price.cached_input_read) == (Decimal("0.0000025"), Decimal("0.00001"),
                                                                    Decimal("0.00000125"))
    spec = spec_from_price(price)

    def call(i: int, **fields) -> LLMCall:
        base = dict(organization=org, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", operation="chat",
                    start_time=now - timedelta(hours=1, minutes=37 * (i % 100)), environment="production", cost_status="priced")
        return LLMCall(**{**base, **fields})

    search_calls = []
    for i in range(40):
        usage = CallUsage(input_tokens=20_000 + 100 * i, cached_input_tokens=8_000 if i % 2 == 0 else 0,
                          output_tokens=1_000 + 10 * i)
        failed = i % 10 == 3
        cache_hit = i == 5
        cost = price_call(usage, spec).total
        search_calls.append(call(
            i, provider="openai", request_model="gpt-4o", response_model="gpt-4o-2024-08-06", team=team, product=answers,
            feature="answer" if i % 3 else "rewrite", input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens, output_tokens=usage.output_tokens,
            duration_ms=rng.lognormvariate(6.8, 0.5), ttft_ms=rng.uniform(150, 400) if i % 4 == 0 else None,
            streaming=i % 4 == 0, status="error" if failed else "ok", error_type="RateLimitError" if failed else "",
            http_status=429 if failed else None, price_id=price.id, app_cache_hit=cache_hit,
            cost_usd=Decimal(0) if cache_hit else cost, cost_avoided_usd=cost if cache_hit else None,
            cost_status="free" if cache_hit else "priced", end_user=f"user-{i % 5}", session=f"session-{i % 7}",
        ))
    unknown_calls = [call(100 + i, provider="acme", request_model="mystery-llm", team=team, product=answers,
                          input_tokens=500, output_tokens=50, duration_ms=900.0, cost_usd=None, cost_status="unknown_model")
                     for i in range(3)]
    ads_calls = [call(200 + i, provider="anthropic", request_model=ADS_MODEL, team=other_team, product=ads_ranker,
                      input_tokens=3_000, output_tokens=300, duration_ms=55_555.0, cost_usd=ADS_CALL_COST,
                      status="error" if i % 4 == 0 else "ok", error_type="AdsSecretError" if i % 4 == 0 else "",
                      cost_status="unknown_model" if i == 1 else "priced", end_user="ads-user")
                 for i in range(20)]
    ads_calls[1].cost_usd = None
    unattributed_calls = [call(300 + i, provider="openai", request_model="gpt-4o-mini", input_tokens=1_000,
                               output_tokens=100, duration_ms=700.0, cost_usd=Decimal("1.00")) for i in range(5)]
    LLMCall.objects.bulk_create([*search_calls, *unknown_calls, *ads_calls, *unattributed_calls])

    traced = search_calls[0]
    root_span = "a" * 16
    LLMCall.objects.filter(span_id=traced.span_id).update(parent_span_id=root_span)
    traced.parent_span_id = root_span
    TraceSpan.objects.bulk_create([
        TraceSpan(organization=org, trace_id=traced.trace_id, span_id=root_span, name="POST /answer", team=team,
                  start_time=traced.start_time - timedelta(milliseconds=40), duration_ms=traced.duration_ms + 120),
        TraceSpan(organization=org, trace_id=traced.trace_id, span_id="b" * 16, parent_span_id=root_span, team=team,
                  name="SELECT documents", start_time=traced.start_time - timedelta(milliseconds=30), duration_ms=20.0),
    ])
    CallContent.objects.create(organization=org, trace_id=traced.trace_id, span_id=traced.span_id,
                               start_time=traced.start_time, input_content="What is our refund policy?",
                               output_content="Refunds are possible within 30 days.")
    rollup_pending()

    hour = (now - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    ads_pool = GpuPool.objects.create(organization=org, name="ads-pool", gpu_model="A100", gpu_count=2,
                                      hourly_usd_per_gpu=Decimal("4.0000"), owner_team=other_team)
    shared_pool = GpuPool.objects.create(organization=org, name="shared-pool", gpu_model="H100", gpu_count=1,
                                         hourly_usd_per_gpu=Decimal("3.0000"))
    GpuCostHour.objects.bulk_create([
        GpuCostHour(organization=org, pool=ads_pool, hour=hour, team=other_team, cost_usd=Decimal("6.66"), gpu_seconds=5000, basis="tokens"),
        GpuCostHour(organization=org, pool=ads_pool, hour=hour, is_idle=True, cost_usd=Decimal("1.34"), gpu_seconds=2200, basis="tokens"),
        GpuCostHour(organization=org, pool=shared_pool, hour=hour, team=team, cost_usd=Decimal("1.50"), gpu_seconds=1800, basis="tokens"),
        GpuCostHour(organization=org, pool=shared_pool, hour=hour, team=other_team, cost_usd=Decimal("0.90"), gpu_seconds=1080, basis="tokens"),
        GpuCostHour(organization=org, pool=shared_pool, hour=hour, is_idle=True, cost_usd=Decimal("0.60"), gpu_seconds=720, basis="tokens"),
    ])
    AttributionRule.objects.create(organization=org, field="service_name", pattern="ads-secret-*", team=other_team)
    users = {
        "search_viewer": user("vera", org, team, Role.VIEWER),
        "search_manager": user("mona", org, team, Role.MANAGER),
        "ads_viewer": user("adam", org, other_team, Role.VIEWER),
        "admin": user("alice", org, None, Role.ADMIN),
    }
    return Seed(
        org=org, search=team, ads=other_team, answers=answers, ads_ranker=ads_ranker, search_calls=search_calls,
        ads_calls=ads_calls, unattributed_calls=unattributed_calls, unknown_calls=unknown_calls, price=price,
        traced_call=traced, users=users, ads_key=create_api_key(org, "Ads ingest key", team=other_team).api_key,
        search_key=create_api_key(org, "Search key", team=team).api_key, ads_pool=ads_pool, shared_pool=shared_pool,
    )


def shown(response, testid: str) -> str:
    """The text of the element with data-testid=<testid> in a page."""
    found = re.search(rf'data-testid="{testid}">([^<]*)<'.encode(), response.content)
    assert found, f"no {testid} in the page"
    return found.group(1).decode().strip()


def leaks_ads(content: bytes) -> list[str]:
    """What of the Ads team's data shows in a page (empty: nothing)."""
    text = content.decode()
    found = [s for s in (ADS_MODEL, ADS_PRODUCT, "AdsSecretError", "ads-pool", "ads-secret-", "Ads ingest key", "ads-user")
             if s in text]
    # figures as whole numbers: "6.66" inside a chart's 6.666666… (an error rate of 1 in 15) is not Ads' GPU cost
    found += [s for s in ("7.77", "147.63", "6.66", "55,555") if re.search(rf"(?<![\d.]){re.escape(s)}(?![\d])", text)]
    if re.search(r"\bAds\b", text):
        found.append("Ads")
    return found


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


@pytest.mark.django_db
def test_the_rollups_add_up_to_the_seeded_calls(data):
    week = (timezone.now() - timedelta(days=7), timezone.now() + timedelta(hours=1))
    search = total(Scope(data.org.id, (data.search.id,)), *week)
    raw = LLMCall.objects.filter(team=data.search).aggregate(c=Sum("cost_usd"))["c"]
    assert search["cost_usd"] == raw
    assert search["calls"] == 43
    assert search["unpriced_calls"] == 3
    everything = total(Scope(data.org.id), *week)
    assert everything["cost_usd"] == raw + ADS_CALL_COST * 19 + Decimal("5.00")


@pytest.mark.django_db
def test_the_leak_detector_sees_the_other_teams_figures(data):
    assert leaks_ads(b"<td>Ads</td><td>$147.63</td>") == ["147.63", "Ads"]
    assert leaks_ads(b"<td>Loads of Adsense</td>") == []
