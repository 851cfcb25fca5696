"""Savings recommendations: each test builds traffic whose answer is known by hand, from the bundled catalog's prices
(per million tokens: gpt-4o $2.50 in / $1.25 cached read / $10 out; gpt-4o-mini $0.15 in / $0.60 out).

A monthly figure is the saving found in the window × 30.44 / the days with data (from the hour of the first call to
the window's end): the tests run at a whole hour, so calls made N days before it are N days of data."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import Recommendation
from billing.pricing.at_ingest import catalog_cache
from billing.recommendations import find, generate, route_for
from billing.services import load_default_catalog
from billing.tasks import generate_recommendations
from ingest.models import LLMCall
from observatory.models import Membership, Role

RECS = "/api/v1/recommendations"
GPT_4O = {"input": Decimal("2.5") / 10**6, "output": Decimal("10") / 10**6}
_ids = itertools.count(1)


def on_the_hour():
    """Now, rounded down to the hour (never midnight: a day of data then spans two dates): calls N days before it
    give exactly N days with data."""
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    return hour - timedelta(hours=1) if hour.hour == 0 else hour


def per_month(window_usd: str, days: int) -> Decimal:
    """The window's saving × 30.44 / its days with data, to the micro-dollar as stored."""
    return (Decimal(window_usd) * Decimal("30.44") / days).quantize(Decimal("0.000001"))


@pytest.fixture
def catalog(db):
    load_default_catalog()
    catalog_cache.refresh(force=True)


def add_calls(org, count, *, at, model="gpt-4o", input_tokens=500, output_tokens=50, feature="", team=None,
              status="ok", error_type="", request_hash=None, prompt_prefix_hash="", cached=0):
    """`count` gpt-4o calls at `at` (one second apart), each costing what the catalog says."""
    cost = input_tokens * GPT_4O["input"] + output_tokens * GPT_4O["output"]
    rows = []
    for i in range(count):
        n = next(_ids)
        rows.append(LLMCall(
            organization=org, trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time=at + timedelta(seconds=i),
            provider="openai", operation="chat", request_model=model, response_model=model, team=team, feature=feature,
            input_tokens=input_tokens, output_tokens=output_tokens, cached_input_tokens=cached, status=status,
            error_type=error_type, request_hash=request_hash if request_hash is not None else f"req-{n}",
            prompt_prefix_hash=prompt_prefix_hash, cost_usd=cost, cost_status="priced",
        ))
    LLMCall.objects.bulk_create(rows, batch_size=2000)
    return cost


def test_route_map():
    assert route_for("gpt-4o") == "gpt-4o-mini"
    assert route_for("claude-opus-4-1") == "claude-sonnet-4-5"
    assert route_for("gpt-4o-mini") is None
    # what providers report: dated snapshots, provider prefixes
    assert route_for("gpt-4o-2024-08-06") == "gpt-4o-mini"
    assert route_for("openai/gpt-4.1-2025-04-14") == "gpt-4.1-mini"
    assert route_for("claude-sonnet-4-5-20250929") == "claude-haiku-4-5"
    assert route_for("gpt-4o-mini-2024-07-18") is None
    assert route_for("ft:gpt-4o-2024-08-06:acme::abc123") is None  # a fine-tune is not swapped for a stock model


@pytest.mark.django_db
def test_model_routing_from_gpt_4o_to_mini(org, team, catalog):
    now = on_the_hour()
    add_calls(org, 10_000, at=now - timedelta(days=2), feature="classify", team=team)
    # 10,000 × (500 × (2.50 − 0.15) + 50 × (10 − 0.60)) / 1e6 = 10,000 × (1,175 + 470) / 1e6 = $16.45 in the window,
    # all of it in the last 2 days: $16.45 × 30.44 / 2 = $250.369 a month (not × 30 / 30 = $16.45)
    [rec] = generate(org.pk, now=now, window_days=30)
    assert rec.kind == "model_routing" and rec.feature == "classify" and rec.model == "gpt-4o"
    assert rec.team == team and rec.evidence["suggested_model"] == "gpt-4o-mini"
    assert rec.evidence_value == Decimal("16.45")
    assert rec.monthly_savings_usd == per_month("16.45", 2) == Decimal("250.369")
    assert (rec.data_start, rec.data_end) == (now - timedelta(days=2), now)
    assert rec.evidence["days_with_data"] == "2" and rec.evidence["window_days"] == 30
    last_day = now - timedelta(microseconds=1)
    assert rec.formula.endswith(f"× 30.44 / 2 days with data ({now - timedelta(days=2):%b %-d} – {last_day:%b %-d})")
    assert rec.evidence["calls"] == 10_000 and rec.evidence["median_input_tokens"] == 500
    # a 10-day window holds the same 2 days of calls: the same month (it used to be × 30 / 10 = $49.35)
    [rec] = generate(org.pk, now=now, window_days=10)
    assert rec.monthly_savings_usd == Decimal("250.369")
    assert Recommendation.objects.count() == 1


@pytest.mark.django_db
def test_no_routing_below_the_thresholds(org, catalog):
    now = timezone.now()
    add_calls(org, 999, at=now - timedelta(days=1), feature="few")  # under 1,000 calls
    add_calls(org, 1_000, at=now - timedelta(days=1), feature="long", input_tokens=1_500)  # median input > 1,000
    add_calls(org, 1_000, at=now - timedelta(days=1), feature="mini", model="gpt-4o-mini")  # no smaller model
    assert generate(org.pk, now=now) == []


@pytest.mark.django_db
def test_response_cache_counts_all_but_the_first_of_each_hash(org, catalog):
    now = on_the_hour()
    each = add_calls(org, 4, at=now - timedelta(days=3), feature="faq", input_tokens=200_000, output_tokens=0,
                     request_hash="A")
    add_calls(org, 2, at=now - timedelta(days=3), feature="faq", input_tokens=200_000, output_tokens=0, request_hash="B")
    add_calls(org, 1, at=now - timedelta(days=3), feature="faq", input_tokens=200_000, output_tokens=0, request_hash="C")
    assert each == Decimal("0.5")  # 200,000 × $2.50/M
    # duplicates: 3 of A + 1 of B = 4 calls × $0.50 = $2.00 in 3 days with data: $2.00 × 30.44 / 3 = $20.293333
    [rec] = generate(org.pk, now=now)
    assert rec.kind == "response_cache" and rec.feature == "faq"
    assert rec.evidence["duplicate_calls"] == 4 and rec.evidence["distinct_request_hashes"] == 2
    assert rec.monthly_savings_usd == per_month("2.00", 3) == Decimal("20.293333")


@pytest.mark.django_db
def test_failed_calls_by_error_type_over_a_dollar_a_month(org, catalog):
    now = on_the_hour()
    # one day of calls. timeout: 20 × 40,000 × $2.50/M = 20 × $0.10 = $2.00, × 30.44 / 1 = $60.88 a month;
    # rate_limit: 1 × 10,000 × $2.50/M = $0.025, × 30.44 = $0.761 a month: below $1, left out
    add_calls(org, 20, at=now - timedelta(days=1), input_tokens=40_000, output_tokens=0, status="error",
              error_type="timeout")
    add_calls(org, 1, at=now - timedelta(days=1), input_tokens=10_000, output_tokens=0, status="error",
              error_type="rate_limit")
    add_calls(org, 5, at=now - timedelta(days=1), input_tokens=40_000, output_tokens=0)
    [rec] = generate(org.pk, now=now)
    assert rec.kind == "failed_calls" and rec.evidence["error_type"] == "timeout"
    assert rec.evidence["failed_calls"] == 20 and rec.monthly_savings_usd == per_month("2.00", 1) == Decimal("60.88")
    assert rec.confidence == "high"
    # 09:00 yesterday to 09:00 today is one day over two dates
    assert rec.formula.endswith(f"× 30.44 / 1 day with data ({now - timedelta(days=1):%b %-d} – "
                                f"{now - timedelta(microseconds=1):%b %-d})")


@pytest.mark.django_db
def test_prompt_caching_estimate(org, catalog):
    now = on_the_hour()
    # 200 calls × 10,000 input tokens sharing one prefix, 5% cached, all a day ago:
    # 0.5 × 2,000,000 × ($2.50 − $1.25)/M = $1.25 in the window, × 30.44 / 1 day = $38.05 a month
    add_calls(org, 200, at=now - timedelta(days=1), input_tokens=10_000, output_tokens=0, prompt_prefix_hash="p1",
              cached=500, feature="agent")
    [rec] = generate(org.pk, now=now)
    assert rec.kind == "prompt_caching" and rec.feature == "agent" and rec.model == "gpt-4o"
    assert rec.monthly_savings_usd == per_month("1.25", 1) == Decimal("38.05")
    # well cached (20% or more): nothing to recommend
    LLMCall.objects.update(cached_input_tokens=2_000)
    assert generate(org.pk, now=now) == []
    assert not Recommendation.objects.exists()


@pytest.mark.django_db
def test_no_waste_no_recommendation(org, catalog):
    now = timezone.now()
    add_calls(org, 50, at=now - timedelta(days=1), input_tokens=2_000, output_tokens=300, feature="chat")
    assert generate(org.pk, now=now) == []
    assert generate_recommendations() == {"organizations": 1, "recommendations": 0}


@pytest.mark.django_db
def test_dismissed_comes_back_only_when_the_saving_doubles(org, catalog):
    now = on_the_hour()
    failing = {"input_tokens": 40_000, "output_tokens": 0, "status": "error", "error_type": "timeout"}
    add_calls(org, 20, at=now - timedelta(days=5), **failing)  # $2.00 in 5 days with data: $12.176 a month
    [rec] = generate(org.pk, now=now)
    assert rec.monthly_savings_usd == per_month("2.00", 5) == Decimal("12.176")
    rec.status, rec.dismissed_reason = "dismissed", "retries are expected"
    rec.save()
    add_calls(org, 19, at=now - timedelta(days=4), **failing)  # $3.90 in the same 5 days: $23.7432 < 2 × $12.176
    [again] = generate(org.pk, now=now)
    again.refresh_from_db()
    assert again.pk == rec.pk and again.status == "dismissed" and again.evidence_value == Decimal("2")
    assert again.monthly_savings_usd == Decimal("12.176")
    add_calls(org, 1, at=now - timedelta(days=3), **failing)  # $4.00: $24.352 a month = 2 × $12.176
    [back] = generate(org.pk, now=now)
    back.refresh_from_db()
    assert back.pk == rec.pk and back.status == "open" and back.dismissed_reason == ""
    assert back.evidence_value == Decimal("4") and back.monthly_savings_usd == Decimal("24.352")


@pytest.mark.django_db
def test_a_dismissed_one_stays_dismissed_when_only_the_days_of_data_grow(org, catalog):
    """$2.00 of failures every day: after 2 days and after 6 the window saving triples ($4 → $12), the month does
    not ($4 × 30.44 / 2 = $12 × 30.44 / 6 = $60.88), so a dismissed one is not brought back by time passing."""
    later = on_the_hour()
    first = later - timedelta(days=4)
    failing = {"input_tokens": 40_000, "output_tokens": 0, "status": "error", "error_type": "timeout"}
    for day in (6, 5):
        add_calls(org, 20, at=later - timedelta(days=day), **failing)
    [rec] = generate(org.pk, now=first)
    assert rec.evidence_value == Decimal("4") and rec.monthly_savings_usd == per_month("4.00", 2) == Decimal("60.88")
    rec.status = "dismissed"
    rec.save()
    for day in (4, 3, 2, 1):
        add_calls(org, 20, at=later - timedelta(days=day), **failing)
    [found] = find(org.pk, now=later)
    assert found.window_savings_usd == Decimal("12") and found.span.days == 6
    assert found.span.monthly(found.window_savings_usd) == Decimal("60.88")
    [again] = generate(org.pk, now=later)
    again.refresh_from_db()
    assert again.status == "dismissed" and again.monthly_savings_usd == Decimal("60.88")
    assert again.evidence_value == Decimal("4")  # kept as it was dismissed


@pytest.mark.django_db
def test_open_recommendations_go_when_the_condition_no_longer_holds(org, catalog):
    now = on_the_hour()
    add_calls(org, 20, at=now - timedelta(days=5), input_tokens=40_000, output_tokens=0, status="error",
              error_type="timeout")
    [rec] = generate(org.pk, now=now)
    later = now + timedelta(days=40)  # the failures left the window
    assert generate(org.pk, now=later) == []
    assert not Recommendation.objects.filter(pk=rec.pk).exists()
    # an accepted one is kept
    generate(org.pk, now=now)
    Recommendation.objects.update(status="accepted")
    generate(org.pk, now=later)
    assert Recommendation.objects.get().status == "accepted"


# API ---------------------------------------------------------------------------------------------------------------

def _user(org, role, team=None):
    user = get_user_model().objects.create_user(f"{role}-{team.slug if team else 'org'}", password="pw-123456!")
    Membership.objects.create(user=user, organization=org, team=team, role=role)
    return user


def _rec(org, name, team=None):
    return Recommendation.objects.create(organization=org, kind="failed_calls", team=team, title=name,
                                         fingerprint=f"failed_calls:{name}", monthly_savings_usd=Decimal("5"),
                                         evidence_value=Decimal("5"))


@pytest.mark.django_db
def test_api_scoping_and_status_changes(client, org, team, other_team):
    mine, theirs, org_wide = _rec(org, "mine", team), _rec(org, "theirs", other_team), _rec(org, "org")
    client.force_login(_user(org, Role.VIEWER, team))
    body = client.get(RECS).json()
    rows = body["results"] if isinstance(body, dict) else body
    assert [r["title"] for r in rows] == ["mine"] and rows[0]["team"] == "search"
    assert client.post(f"{RECS}/{mine.pk}/status", {"status": "dismissed"},
                       content_type="application/json").status_code == 403  # a viewer may not

    client.force_login(_user(org, Role.MANAGER, team))
    response = client.post(f"{RECS}/{mine.pk}/status", {"status": "dismissed", "reason": "not worth it"},
                           content_type="application/json")
    assert response.status_code == 200, response.content
    mine.refresh_from_db()
    assert mine.status == "dismissed" and mine.dismissed_reason == "not worth it"
    assert client.post(f"{RECS}/{theirs.pk}/status", {"status": "accepted"},
                       content_type="application/json").status_code == 404  # not visible to this manager
    assert client.post(f"{RECS}/{mine.pk}/status", {"status": "bogus"},
                       content_type="application/json").status_code == 400

    client.force_login(_user(org, Role.ADMIN))
    body = client.get(RECS).json()
    rows = body["results"] if isinstance(body, dict) else body
    assert sorted(r["title"] for r in rows) == ["mine", "org", "theirs"]
    assert [r["title"] for r in client.get(f"{RECS}?status=dismissed").json()] == ["mine"]
    assert client.post(f"{RECS}/{org_wide.pk}/status", {"status": "accepted"},
                       content_type="application/json").status_code == 200
    org_wide.refresh_from_db()
    assert org_wide.status == "accepted"


@pytest.mark.django_db
def test_the_migration_gives_rows_from_before_their_window_as_days(org):
    """Rows written × 30 / 30 days before the days were stored: their window becomes their days, on a month of 30.44
    days like everything else — $5 found in 30 days is $5.073333 a month — until the next run finds the real days."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("billing.migrations.0018_recommendation_days_with_data")
    old = Recommendation.objects.create(
        organization=org, kind="failed_calls", title="old", fingerprint="failed_calls:old", evidence_value=Decimal("5"),
        monthly_savings_usd=Decimal("5"), evidence={"window_days": 30}, formula="(Σ cost_usd) × 30 / 30 days")
    migration.span_the_window(apps, None)
    old.refresh_from_db()
    assert old.monthly_savings_usd == Decimal("5.073333") and old.formula == "(Σ cost_usd) × 30.44 / 30 days"
    assert (old.data_start, old.data_end) == (old.updated_at - timedelta(days=30), old.updated_at)
    assert old.data_span.days == 30
