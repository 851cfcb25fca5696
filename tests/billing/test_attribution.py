"""Attribution of calls at ingest and afterwards: the call's own team, else the first matching rule, else the key."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from billing.attribution import reattribute
from billing.models import AttributionRule
from ingest.attribution import rule_cache
from ingest.models import LLMCall
from ingest.records import CallFields
from ingest.services import store_calls
from observatory.models import Organization, Product
from observatory.services import create_api_key

WHEN = datetime(2026, 11, 20, 12, tzinfo=UTC)
SINCE = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def keyed(org, team):
    """A key whose calls default to the Search team."""
    return create_api_key(org, "search", team=team).api_key


@pytest.fixture
def bare(org):
    """A key without a default team."""
    return create_api_key(org, "shared").api_key


def _store(api_key, *calls: dict) -> None:
    store_calls(api_key, [
        CallFields(trace_id=f"{api_key.pk:016x}{i:016x}", span_id=f"{i:016x}", parent_span_id=None,
                   start_time=WHEN + timedelta(hours=i), duration_ms=500.0, provider="openai",
                   request_model="gpt-4o-mini", input_tokens=100, output_tokens=10, **fields)
        for i, fields in enumerate(calls, start=1)
    ])


def _rule(org, field, pattern, team=None, position=100, **extra) -> AttributionRule:
    rule = AttributionRule.objects.create(organization=org, field=field, pattern=pattern, team=team,
                                          position=position, **extra)
    rule_cache.clear()
    return rule


def _attribution() -> dict[str, tuple[str | None, str]]:
    """service name → (team slug, where it came from)."""
    return {
        call.service_name: (call.team.slug if call.team_id else None, call.attribution)
        for call in LLMCall.objects.select_related("team")
    }


def test_it_takes_the_team_from_the_call_then_the_key(keyed, bare, other_team):
    _store(keyed, {"service_name": "named", "team": "ads"}, {"service_name": "keyed"})
    _store(bare, {"service_name": "unattributed"})

    assert _attribution() == {"named": ("ads", "call"), "keyed": ("search", "key"), "unattributed": (None, "")}


def test_a_new_team_named_by_a_call_is_created(keyed):
    _store(keyed, {"service_name": "named", "team": "Data Platform"})

    assert _attribution() == {"named": ("data-platform", "call")}


def test_a_rule_beats_the_key_default_but_never_the_calls_own_team(org, keyed, other_team):
    _rule(org, AttributionRule.Field.SERVICE_NAME, "checkout-*", team=other_team)
    _store(keyed, {"service_name": "checkout-api"}, {"service_name": "checkout-web", "team": "search"})

    assert _attribution() == {"checkout-api": ("ads", "rule"), "checkout-web": ("search", "call")}


def test_the_first_matching_rule_wins(org, bare, team, other_team):
    _rule(org, AttributionRule.Field.SERVICE_NAME, "*", team=team, position=50)
    _rule(org, AttributionRule.Field.SERVICE_NAME, "billing-*", team=other_team, position=10)
    _rule(org, AttributionRule.Field.SERVICE_NAME, "billing-api", team=team, position=10)

    _store(bare, {"service_name": "billing-api"}, {"service_name": "search-api"})

    assert _attribution() == {"billing-api": ("ads", "rule"), "search-api": ("search", "rule")}


@pytest.mark.parametrize(("field", "pattern", "extra", "call"), [
    (AttributionRule.Field.SERVICE_NAME, "ads-*", {}, {"service_name": "ads-ranker"}),
    (AttributionRule.Field.ATTRIBUTE, "ads", {"attribute_key": "app.owner"}, {"attributes": {"app.owner": "ads"}}),
    (AttributionRule.Field.MODEL, "claude-*", {}, {"response_model": "claude-sonnet-4-5-20250929"}),
    (AttributionRule.Field.ENVIRONMENT, "staging", {}, {"environment": "staging"}),
])
def test_rules_match_each_field(org, bare, other_team, field, pattern, extra, call):
    _rule(org, field, pattern, team=other_team, **extra)
    _store(bare, {"service_name": "matching", **call}, {"service_name": "other"})

    matching = call.get("service_name", "matching")
    assert _attribution() == {matching: ("ads", "rule"), "other": (None, "")}


def test_a_rule_matches_the_api_key_prefix(org, keyed, bare, other_team):
    _rule(org, AttributionRule.Field.API_KEY, bare.prefix[:6] + "*", team=other_team)
    _store(bare, {"service_name": "via-shared-key"})
    _store(keyed, {"service_name": "via-search-key"})

    assert _attribution() == {"via-shared-key": ("ads", "rule"), "via-search-key": ("search", "key")}


def test_a_rule_gives_product_and_feature(org, bare):
    product = Product.objects.create(organization=org, name="Assistant", slug="assistant")
    _rule(org, AttributionRule.Field.SERVICE_NAME, "assistant-*", product=product, feature="chat")
    _store(bare, {"service_name": "assistant-api"}, {"service_name": "assistant-bot", "feature": "summary"})

    rows = LLMCall.objects.order_by("service_name").values_list("service_name", "product__slug", "feature", "attribution")
    assert list(rows) == [("assistant-api", "assistant", "chat", "rule"), ("assistant-bot", "assistant", "summary", "rule")]


def test_reattribute_moves_stored_calls_to_a_new_rule(org, keyed, bare, other_team):
    _store(keyed, {"service_name": "ads-api"}, {"service_name": "search-api"}, {"service_name": "ads-web", "team": "search"})
    _store(bare, {"service_name": "ads-batch"})
    _rule(org, AttributionRule.Field.SERVICE_NAME, "ads-*", team=other_team)

    assert reattribute(org.id, SINCE) == 2

    assert _attribution() == {
        "ads-api": ("ads", "rule"),
        "ads-batch": ("ads", "rule"),
        "search-api": ("search", "key"),
        "ads-web": ("search", "call"),
    }
    assert reattribute(org.id, SINCE) == 0


def test_reattribute_after_a_rule_is_removed_falls_back_to_the_key(org, keyed, bare, other_team):
    rule = _rule(org, AttributionRule.Field.SERVICE_NAME, "ads-*", team=other_team)
    _store(keyed, {"service_name": "ads-api"})
    _store(bare, {"service_name": "ads-batch"})
    rule.delete()

    assert reattribute(org.id, SINCE) == 2
    assert _attribution() == {"ads-api": ("search", "key"), "ads-batch": (None, "")}


def test_reattribute_agrees_with_ingest(org, keyed, bare, other_team):
    _rule(org, AttributionRule.Field.SERVICE_NAME, "ads-*", team=other_team, position=1)
    _rule(org, AttributionRule.Field.SERVICE_NAME, "tagged-*", feature="tagging", position=2)
    _store(keyed, {"service_name": "ads-api"}, {"service_name": "tagged-api"}, {"service_name": "plain", "team": "x"})
    _store(bare, {"service_name": "tagged-batch"}, {"service_name": "plain-batch"})

    assert reattribute(org.id, SINCE) == 0


def test_reattribute_respects_the_range_and_the_organization(org, keyed, other_team):
    other = Organization.objects.create(name="Other", slug="other")
    _store(create_api_key(other, "other").api_key, {"service_name": "other-org-ads"})
    _store(keyed, {"service_name": "ads-api"}, {"service_name": "ads-web"})  # at WHEN + 1 h and WHEN + 2 h
    _rule(org, AttributionRule.Field.SERVICE_NAME, "*ads*", team=other_team)
    _rule(other, AttributionRule.Field.SERVICE_NAME, "*", team=None, feature="x")

    assert reattribute(org.id, WHEN + timedelta(hours=2), batch=1) == 1
    assert _attribution() == {"ads-api": ("search", "key"), "ads-web": ("ads", "rule"), "other-org-ads": (None, "")}


def test_the_command_reattributes_an_organizations_calls(org, keyed, other_team):
    _store(keyed, {"service_name": "ads-api"})
    _rule(org, AttributionRule.Field.SERVICE_NAME, "ads-*", team=other_team)
    out = StringIO()

    call_command("reattribute", "--since", "2026-11-01", "--org", "acme", stdout=out)

    assert out.getvalue() == "acme: 1 calls re-attributed\n"
    assert _attribution() == {"ads-api": ("ads", "rule")}
