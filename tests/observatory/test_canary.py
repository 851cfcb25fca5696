"""Apply as a canary (Savings page) and the canary page: the button only where it applies and for those who may act,
POST with CSRF, the two arms side by side with the realized saving, and widen / keep / roll back."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from billing.models import Recommendation
from gateway.rules import RoutingRule
from ingest.feedback import Feedback
from ingest.models import LLMCall
from observatory.models import Membership, Role

HUNDRED = Decimal(100)


@pytest.fixture
def rec(org, team):
    return Recommendation.objects.create(
        organization=org, kind=Recommendation.Kind.MODEL_ROUTING, team=team, feature="faq", model="gpt-4o",
        title="Route “faq” from gpt-4o to gpt-4o-mini", evidence={"suggested_model": "gpt-4o-mini", "calls": 1200},
        monthly_savings_usd=Decimal("120"), fingerprint="model_routing:faq:openai:gpt-4o")


def person(django_user_model, org, name, role, team=None):
    user = django_user_model.objects.create_user(name, password="pw")
    Membership.objects.create(user=user, organization=org, team=team, role=role)
    return user


@pytest.fixture
def manager(django_user_model, org, team):
    return person(django_user_model, org, "mia", Role.MANAGER, team)


def seed_arms(org, team, rule):
    """9 calls on A (gpt-4o, one failed) at $0.35 and 3 on B (gpt-4o-mini) at $0.021, with feedback."""
    calls = []
    for i in range(12):
        canary = i >= 9
        calls.append(LLMCall(
            organization=org, team=team, feature="faq", trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}",
            start_time=rule.created_at + timedelta(seconds=i + 1), provider="openai", operation="chat",
            request_model="gpt-4o-mini" if canary else "gpt-4o", input_tokens=100_000, output_tokens=10_000,
            cost_usd=Decimal("0.021") if canary else Decimal("0.35"), cost_status="priced",
            status="error" if i == 4 else "ok", duration_ms=100 + 10 * i,
            attributes={"observatory.route.rule": str(rule.id), "observatory.route.arm": "canary" if canary else "control",
                        "observatory.request_model": "gpt-4o"}))
    LLMCall.objects.bulk_create(calls)
    for call, score in ((calls[0], 1), (calls[1], 0), (calls[9], 1), (calls[10], 1)):
        Feedback.objects.create(organization=org, trace_id=call.trace_id, span_id=call.span_id,
                                call_start_time=call.start_time, score=score)


def test_the_savings_page_offers_apply_as_a_canary_to_those_who_may_act(client, manager, rec, django_user_model, org,
                                                                        team):
    client.force_login(manager)
    page = client.get("/recommendations/")
    assert f'data-testid="apply-canary-{rec.id}"'.encode() in page.content
    assert b"Apply as a canary</button>" in page.content and "10% → gpt-4o-mini".encode() in page.content

    client.force_login(person(django_user_model, org, "vic", Role.VIEWER, team))
    assert f'data-testid="apply-canary-{rec.id}"'.encode() not in client.get("/recommendations/").content


def test_it_applies_a_recommendation_as_a_10_percent_canary(client, manager, rec):
    client.force_login(manager)
    response = client.post(f"/recommendations/{rec.id}/canary/", {"share": "10"})

    rule = RoutingRule.objects.get()
    assert response.status_code == 302 and response.url == f"/routing/{rule.id}/?org=acme"
    assert (rule.from_model, rule.to_model, rule.share_percent, rule.feature, rule.team_id) == (
        "gpt-4o", "gpt-4o-mini", Decimal("10.00"), "faq", rec.team_id)
    rec.refresh_from_db()
    assert rec.status == "accepted"
    page = client.get("/recommendations/?status=all")
    assert f'data-testid="canary-link-{rec.id}"'.encode() in page.content  # no second canary offered
    client.post(f"/recommendations/{rec.id}/canary/", {"share": "10"})
    assert RoutingRule.objects.count() == 1


def test_it_needs_the_csrf_token(manager, rec):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(manager)
    assert strict.post(f"/recommendations/{rec.id}/canary/", {"share": "10"}).status_code == 403
    assert RoutingRule.objects.count() == 0


def test_it_rejects_get(client, manager, rec):
    client.force_login(manager)
    assert client.get(f"/recommendations/{rec.id}/canary/").status_code == 405


def test_a_viewer_may_not_apply_it(client, django_user_model, org, team, rec):
    client.force_login(person(django_user_model, org, "vic", Role.VIEWER, team))
    assert client.post(f"/recommendations/{rec.id}/canary/", {"share": "10"}).status_code == 403
    assert RoutingRule.objects.count() == 0


def test_another_teams_manager_gets_a_404(client, django_user_model, org, other_team, rec):
    client.force_login(person(django_user_model, org, "oz", Role.MANAGER, other_team))
    assert client.post(f"/recommendations/{rec.id}/canary/", {"share": "10"}).status_code == 404
    rule = RoutingRule.objects.create(organization=org, team=rec.team, from_model="gpt-4o", to_model="gpt-4o-mini")
    assert client.get(f"/routing/{rule.id}/").status_code == 404
    assert client.post(f"/routing/{rule.id}/change/", {"action": "rollback"}).status_code == 404


def test_a_bad_share_is_a_message_not_a_500(client, manager, rec):
    client.force_login(manager)
    response = client.post(f"/recommendations/{rec.id}/canary/", {"share": "250"}, follow=True)
    assert response.status_code == 200 and b"at most 100" in response.content
    assert RoutingRule.objects.count() == 0


def test_the_canary_page_shows_both_arms_and_the_realized_saving(client, manager, rec, org, team):
    client.force_login(manager)
    client.post(f"/recommendations/{rec.id}/canary/", {"share": "10"})
    rule = RoutingRule.objects.get()
    seed_arms(org, team, rule)

    page = client.get(f"/routing/{rule.id}/")

    assert page.status_code == 200
    canary = page.context["canary"]
    assert (canary.control.calls, canary.canary.calls) == (9, 3)
    # (0.35 − 0.021) × 3 calls on B = $0.987
    assert canary.realized_saving_usd == Decimal("0.987")
    html = page.content.decode()
    assert 'data-testid="realized-saving">$0.99<' in html
    assert 'data-testid="cpc-control">$0.350000<' in html and 'data-testid="cpc-canary">$0.021000<' in html
    assert 'data-testid="errors-control">11.1%<' in html and 'data-testid="errors-canary">0.0%<' in html
    assert "0.50 <span" in html and "1.00 <span" in html  # feedback means: A 0.50 (2), B 1.00 (2)
    assert canary.control.p50_ms == 140.0  # durations 100…180 ms on A


def test_widen_keep_and_roll_back(client, manager, rec):
    client.force_login(manager)
    client.post(f"/recommendations/{rec.id}/canary/", {"share": "10"})
    rule = RoutingRule.objects.get()
    url = f"/routing/{rule.id}/change/"

    assert b"Widen to 50%" in client.get(f"/routing/{rule.id}/").content
    client.post(url, {"action": "widen", "share": "50"})
    rule.refresh_from_db()
    assert rule.share_percent == 50
    assert b"Widen to 100%" in client.get(f"/routing/{rule.id}/").content
    client.post(url, {"action": "keep"})
    rule.refresh_from_db()
    assert rule.status == "kept" and rule.share_percent == 50
    client.post(url, {"action": "rollback"})
    rule.refresh_from_db()
    assert rule.status == "rolled_back"
    response = client.post(url, {"action": "widen", "share": "100"}, follow=True)
    assert b"was rolled back" in response.content
    rule.refresh_from_db()
    assert rule.share_percent == 50


def test_a_viewer_sees_the_canary_without_the_buttons(client, django_user_model, org, team, rec, manager):
    client.force_login(manager)
    client.post(f"/recommendations/{rec.id}/canary/", {"share": "10"})
    rule = RoutingRule.objects.get()
    client.force_login(person(django_user_model, org, "vic", Role.VIEWER, team))

    page = client.get(f"/routing/{rule.id}/")
    assert page.status_code == 200 and b'data-testid="widen"' not in page.content
    assert client.post(f"/routing/{rule.id}/change/", {"action": "rollback"}).status_code == 403
