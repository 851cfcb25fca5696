"""Settings → Gateway: the clients' base URLs; provider keys stored encrypted and never shown again; the allow-list;
cache policies and routing rules that the gateway's rulebook picks up at once — organization admins only, other
organizations' objects 404s, CSRF on."""

import re
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.views.debug import SafeExceptionReporterFilter

from gateway import vault
from gateway.models import ProviderAccount, UpstreamHost
from gateway.rulebook import Match, Policy, Rulebook, rulebooks
from gateway.rules import CachePolicy, RoutingRule
from gateway.upstreams import resolve
from observatory.dashboard.gateway_settings import ttl_label
from observatory.models import Organization, Product, Role, Team
from observatory.views.gateway_settings import save_provider_account
from tests.observatory.test_dashboard_seed import user

SECRET = "sk-proj-Q7xLw2vN8rT5mZ3k-9f3k"
PAGE = "/settings/gateway/"


@pytest.fixture
def people(org, team, other_team, settings, tmp_path) -> dict:
    settings.DATA_DIR = tmp_path  # the vault's key file
    settings.GATEWAY_ALLOWED_HOSTS = []
    rulebooks.clear()
    Product.objects.create(organization=org, team=team, name="Answers", slug="answers")
    return {"admin": user("alice", org, None, Role.ADMIN), "viewer": user("olga", org, None, Role.VIEWER),
            "manager": user("mona", org, team, Role.MANAGER)}


def login(client, people, who: str):
    client.force_login(people[who])
    return client


def error(response, field: str) -> str:
    found = re.search(rf'data-testid="error-{re.escape(field)}">([^<]*)<', response.content.decode())
    return found.group(1) if found else ""


def test_it_shows_the_base_urls_clients_use(client, people, settings):
    settings.GATEWAY_URL = "http://gateway.example.com:4000"
    page = login(client, people, "viewer").get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<code id="openai-base-url">http://gateway.example.com:4000/v1</code>' in html
    assert '<code id="anthropic-base-url">http://gateway.example.com:4000</code>' in html
    assert 'OpenAI(base_url="http://gateway.example.com:4000/v1", api_key="obs_…")' in html
    assert 'href="/settings/gateway/?org=acme' in client.get("/settings/").content.decode()  # linked from Settings


def test_an_admin_stores_a_provider_key_encrypted_and_sees_only_its_last_four(client, people, org):
    admin = login(client, people, "admin")
    response = admin.post("/settings/gateway/providers/openai/", {"openai-base_url": "", "openai-api_key": f" {SECRET} "})
    assert response.status_code == 302 and response["Location"] == "/settings/gateway/?org=acme#provider-openai"
    account = ProviderAccount.objects.get(organization=org, provider="openai")
    assert SECRET not in account.encrypted_api_key
    assert vault.decrypt(account.encrypted_api_key) == SECRET
    assert (account.key_hint, account.base_url) == ("9f3k", "")
    assert resolve(org.id, "openai").api_key == SECRET  # what the gateway sends upstream

    page = admin.get(PAGE)
    html = page.content.decode()
    assert SECRET not in html and account.encrypted_api_key not in html
    assert "OpenAI calls go to the public API; the stored key ends with …9f3k." in html
    assert re.search(r'data-testid="key-openai">ends with <code>…9f3k</code>', html)
    assert 'data-testid="key-anthropic">no stored key: clients pass theirs in <code>x-upstream-api-key</code>' in html

    kept = admin.post("/settings/gateway/providers/openai/", {"openai-base_url": "", "openai-api_key": ""})
    assert kept.status_code == 302
    assert vault.decrypt(ProviderAccount.objects.get(pk=account.pk).encrypted_api_key) == SECRET  # empty keeps it

    removed = admin.post("/settings/gateway/providers/openai/remove-key/")
    assert removed.status_code == 302
    assert ProviderAccount.objects.filter(pk=account.pk, encrypted_api_key="", key_hint="").exists()
    assert resolve(org.id, "openai").api_key == ""
    assert "The stored OpenAI key is removed" in admin.get(PAGE).content.decode()


def test_a_base_url_off_the_allow_list_is_refused_beside_its_field_and_the_key_is_not_rendered_back(client, people, org):
    admin = login(client, people, "admin")
    refused = admin.post("/settings/gateway/providers/anthropic/",
                         {"anthropic-base_url": "http://llm.internal:8000/v1", "anthropic-api_key": SECRET})
    assert refused.status_code == 400
    assert "is not on the gateway&#x27;s allow-list: allow its host first." in error(refused, "anthropic-base_url")
    assert SECRET not in refused.content.decode()
    assert not ProviderAccount.objects.filter(organization=org, key_hint="9f3k").exists()
    assert admin.post("/settings/gateway/providers/anthropic/", {"anthropic-base_url": "not a url"}).status_code == 400

    assert admin.post("/settings/gateway/hosts/", {"new-host-host": "llm.internal:8000"}).status_code == 302
    saved = admin.post("/settings/gateway/providers/anthropic/",
                       {"anthropic-base_url": "http://llm.internal:8000/v1/", "anthropic-api_key": SECRET})
    assert saved.status_code == 302
    upstream = resolve(org.id, "anthropic")
    assert (upstream.base_url, upstream.api_key) == ("http://llm.internal:8000/v1", SECRET)
    assert '<code>http://llm.internal:8000/v1</code>' in admin.get(PAGE).content.decode()


def test_a_provider_key_is_left_out_of_error_reports(rf, people):
    request = rf.post("/settings/gateway/providers/openai/", {"openai-api_key": SECRET, "openai-base_url": ""})
    request.user = people["viewer"]
    with pytest.raises(PermissionDenied):
        save_provider_account(request, provider="openai")
    reported = SafeExceptionReporterFilter().get_post_parameters(request)
    assert reported["openai-api_key"] == "********************" and reported["openai-base_url"] == ""


def test_an_admin_allows_and_removes_upstream_hosts(client, people, org):
    admin = login(client, people, "admin")
    for bad, message in (("http://llm.internal/v1", "is not a host name"), ("llm.internal:99999", "has an invalid port"),
                         ("api.openai.com", "api.openai.com is already allowed.")):
        response = admin.post("/settings/gateway/hosts/", {"new-host-host": bad})
        assert response.status_code == 400
        assert message in error(response, "new-host-host"), bad
    assert admin.post("/settings/gateway/hosts/", {"new-host-host": " LLM.Internal:8000 "}).status_code == 302
    host = UpstreamHost.objects.get(organization=org)
    assert (host.host, host.created_by) == ("llm.internal:8000", people["admin"])
    again = admin.post("/settings/gateway/hosts/", {"new-host-host": "llm.internal:8000"})
    assert again.status_code == 400 and "llm.internal:8000 is already allowed." == error(again, "new-host-host")
    assert '<td class="mono">llm.internal:8000</td>' in admin.get(PAGE).content.decode()

    assert admin.post(f"/settings/gateway/hosts/{host.id}/remove/").status_code == 302
    assert not UpstreamHost.objects.exists()
    assert "llm.internal:8000 is no longer allowed" in admin.get(PAGE).content.decode()


def test_a_cache_policy_reaches_the_gateways_rulebook_at_once(client, people, org, team):
    admin = login(client, people, "admin")
    assert rulebooks.load(org.id) == Rulebook()  # what a gateway process holds for the next 5 s
    response = admin.post("/settings/gateway/cache-policies/", {
        "new-policy-team": team.id, "new-policy-product": "", "new-policy-feature": "faq",
        "new-policy-ttl_seconds": "5400", "new-policy-enabled": "on"})
    assert response.status_code == 302 and response["Location"].endswith("#cache-policies")
    assert rulebooks.peek(org.id) is None  # forgotten: the next call reloads
    assert rulebooks.load(org.id).policies == (Policy(Match(frozenset({"search"}), frozenset(), "faq"), 5400),)
    policy = CachePolicy.objects.get(organization=org)
    html = admin.get(PAGE).content.decode()
    assert re.search(r"<td>team Search, feature “faq”</td><td[^>]*>1 h 30 min</td>", html)

    assert admin.post(f"/settings/gateway/cache-policies/{policy.id}/", {"enabled": "0"}).status_code == 302
    assert rulebooks.peek(org.id) is None
    assert rulebooks.load(org.id).policies == ()
    assert "Caching team Search, feature “faq” is paused." in admin.get(PAGE).content.decode()
    assert admin.post(f"/settings/gateway/cache-policies/{policy.id}/", {"enabled": "1"}).status_code == 302
    assert len(rulebooks.load(org.id).policies) == 1
    assert admin.post(f"/settings/gateway/cache-policies/{policy.id}/delete/").status_code == 302
    assert not CachePolicy.objects.exists() and rulebooks.load(org.id).policies == ()

    too_long = admin.post("/settings/gateway/cache-policies/", {"new-policy-ttl_seconds": str(31 * 86400)})
    assert too_long.status_code == 400
    assert "less than or equal to 2592000" in error(too_long, "new-policy-ttl_seconds")
    assert not CachePolicy.objects.exists()


def test_a_routing_rule_reaches_the_gateways_rulebook_and_links_to_its_canary_page(client, people, org, team):
    admin = login(client, people, "admin")
    rulebooks.load(org.id)
    answers = Product.objects.get(slug="answers")
    response = admin.post("/settings/gateway/routing-rules/", {
        "new-rule-name": "FAQ to mini", "new-rule-team": "", "new-rule-product": answers.id, "new-rule-feature": "",
        "new-rule-from_model": "gpt-4o", "new-rule-to_model": "gpt-4o-mini", "new-rule-share_percent": "25",
        "new-rule-split": "random", "new-rule-fallback_model": "gpt-4.1-mini", "new-rule-fallback_base_url": "",
        "new-rule-status": "canary"})
    assert response.status_code == 302 and response["Location"].endswith("#routing-rules")
    rule = RoutingRule.objects.get(organization=org)
    assert rulebooks.peek(org.id) is None
    (loaded,) = rulebooks.load(org.id).rules
    assert (loaded.id, loaded.match, loaded.from_model, loaded.to_model, loaded.share_percent, loaded.split,
            loaded.fallback_model, loaded.fallback_base_url) == (
        rule.id, Match(frozenset(), frozenset({"answers"}), ""), "gpt-4o", "gpt-4o-mini", Decimal("25.00"), "random",
        "gpt-4.1-mini", "")
    html = admin.get(PAGE).content.decode()
    assert f'<a href="/routing/{rule.id}/?org=acme">FAQ to mini</a>' in html
    assert "25%" in html and "product Answers" in html
    assert admin.get(f"/routing/{rule.id}/").status_code == 200

    assert admin.post(f"/settings/gateway/routing-rules/{rule.id}/delete/").status_code == 302
    assert not RoutingRule.objects.exists() and rulebooks.load(org.id).rules == ()
    assert admin.get(f"/routing/{rule.id}/").status_code == 404


def test_a_routing_rule_needs_a_share_of_0_to_100_a_target_and_an_allowed_fallback_host(client, people, org):
    admin = login(client, people, "admin")
    rule = {"new-rule-from_model": "gpt-4o", "new-rule-to_model": "gpt-4o-mini", "new-rule-share_percent": "100",
            "new-rule-split": "request_id", "new-rule-status": "canary"}
    over = admin.post("/settings/gateway/routing-rules/", {**rule, "new-rule-share_percent": "150"})
    assert over.status_code == 400
    assert error(over, "new-rule-share_percent") == "Ensure this value is less than or equal to 100."
    under = admin.post("/settings/gateway/routing-rules/", {**rule, "new-rule-share_percent": "-1"})
    assert under.status_code == 400 and error(under, "new-rule-share_percent")
    aimless = admin.post("/settings/gateway/routing-rules/", {**rule, "new-rule-to_model": ""})
    assert aimless.status_code == 400
    assert error(aimless, "new-rule-to_model") == "Give a model to route to, or a fallback model or base URL."
    fallback = {**rule, "new-rule-fallback_base_url": "http://backup.internal:9000/v1"}
    off_list = admin.post("/settings/gateway/routing-rules/", fallback)
    assert off_list.status_code == 400
    assert "is not on the gateway&#x27;s allow-list" in error(off_list, "new-rule-fallback_base_url")
    assert not RoutingRule.objects.exists()

    admin.post("/settings/gateway/hosts/", {"new-host-host": "backup.internal"})
    assert admin.post("/settings/gateway/routing-rules/", fallback).status_code == 302
    assert RoutingRule.objects.get().fallback_base_url == "http://backup.internal:9000/v1"
    assert rulebooks.load(org.id).rules[0].fallback_base_url == "http://backup.internal:9000/v1"


def test_a_routing_rule_may_fall_back_to_the_other_provider_with_one_of_its_models(client, people, org):
    admin = login(client, people, "admin")
    rule = {"new-rule-from_model": "gpt-4o", "new-rule-to_model": "", "new-rule-share_percent": "100",
            "new-rule-split": "request_id", "new-rule-status": "canary", "new-rule-fallback_provider": "anthropic"}
    wrong = admin.post("/settings/gateway/routing-rules/", {**rule, "new-rule-fallback_model": "gpt-4o-mini"})
    assert wrong.status_code == 400
    assert "is a model of openai" in error(wrong, "new-rule-fallback_model")
    assert not RoutingRule.objects.exists()

    saved = admin.post("/settings/gateway/routing-rules/", {**rule, "new-rule-fallback_model": "claude-3-5-haiku-latest"})
    assert saved.status_code == 302
    assert (RoutingRule.objects.get().fallback_provider, rulebooks.load(org.id).rules[0].fallback_provider) == (
        "anthropic", "anthropic")
    assert "on Anthropic" in admin.get(PAGE).content.decode()


def test_non_admins_see_no_controls_and_get_403_on_every_post(client, people, org, team):
    ProviderAccount.objects.create(organization=org, provider="openai", encrypted_api_key=vault.encrypt(SECRET),
                                   key_hint="9f3k")
    host = UpstreamHost.objects.create(organization=org, host="llm.internal")
    policy = CachePolicy.objects.create(organization=org, team=team, ttl_seconds=60)
    rule = RoutingRule.objects.create(organization=org, team=team, from_model="gpt-4o", to_model="gpt-4o-mini")
    posts = (("/settings/gateway/providers/openai/", {"openai-api_key": "sk-mine"}),
             ("/settings/gateway/providers/openai/remove-key/", {}),
             ("/settings/gateway/hosts/", {"new-host-host": "evil.example.com"}),
             (f"/settings/gateway/hosts/{host.id}/remove/", {}),
             ("/settings/gateway/cache-policies/", {"new-policy-ttl_seconds": "60"}),
             (f"/settings/gateway/cache-policies/{policy.id}/", {"enabled": "0"}),
             (f"/settings/gateway/cache-policies/{policy.id}/delete/", {}),
             ("/settings/gateway/routing-rules/", {"new-rule-to_model": "x", "new-rule-share_percent": "100"}),
             (f"/settings/gateway/routing-rules/{rule.id}/delete/", {}))
    for who in ("viewer", "manager"):
        client = login(client, people, who)
        page = client.get(PAGE)
        html = page.content.decode()
        assert page.status_code == 200 and 'data-testid="admins-only"' in html
        assert 'action="/settings/gateway/' not in html and "<form" not in html.split('id="use"')[1].split("</main>")[0]
        assert f'<a href="/routing/{rule.id}/?org=acme">' in html  # their team's rule, read only
        for url, form in posts:
            assert client.post(url, form).status_code == 403, (who, url)
    account = ProviderAccount.objects.get(organization=org)
    assert vault.decrypt(account.encrypted_api_key) == SECRET
    assert list(UpstreamHost.objects.values_list("host", flat=True)) == ["llm.internal"]
    assert CachePolicy.objects.get().enabled and RoutingRule.objects.count() == 1


def test_a_team_member_sees_only_their_teams_rules_and_no_organization_settings(client, people, org, team, other_team):
    ProviderAccount.objects.create(organization=org, provider="openai", key_hint="9f3k", base_url="")
    UpstreamHost.objects.create(organization=org, host="llm.internal")
    RoutingRule.objects.create(organization=org, team=team, name="search rule", to_model="gpt-4o-mini")
    RoutingRule.objects.create(organization=org, team=other_team, name="ads rule", to_model="gpt-4o-mini")
    CachePolicy.objects.create(organization=org, team=other_team, ttl_seconds=77)
    html = login(client, people, "manager").get(PAGE).content.decode()
    assert "search rule" in html
    for hidden in ("ads rule", "team Ads", "9f3k", "llm.internal", 'id="providers"'):
        assert hidden not in html, hidden
    assert 'data-testid="organization-only"' in html


def test_another_organizations_objects_are_404s(client, people, org):
    other = Organization.objects.create(name="Globex", slug="globex")
    secret_team = Team.objects.create(organization=other, name="Secret", slug="secret")
    host = UpstreamHost.objects.create(organization=other, host="globex.internal")
    policy = CachePolicy.objects.create(organization=other, team=secret_team, ttl_seconds=60)
    rule = RoutingRule.objects.create(organization=other, to_model="gpt-4o-mini")
    admin = login(client, people, "admin")
    for url, form in ((f"/settings/gateway/hosts/{host.id}/remove/", {}),
                      (f"/settings/gateway/cache-policies/{policy.id}/", {"enabled": "0"}),
                      (f"/settings/gateway/cache-policies/{policy.id}/delete/", {}),
                      (f"/settings/gateway/routing-rules/{rule.id}/delete/", {}),
                      ("/settings/gateway/providers/mistral/", {"mistral-api_key": "x"}),
                      ("/settings/gateway/hosts/?org=globex", {"new-host-host": "mine.internal"})):
        assert admin.post(url, form).status_code == 404, url
    team_elsewhere = admin.post("/settings/gateway/cache-policies/", {"new-policy-team": secret_team.id,
                                                                      "new-policy-ttl_seconds": "60"})
    assert team_elsewhere.status_code == 400 and "Select a valid choice" in error(team_elsewhere, "new-policy-team")
    assert UpstreamHost.objects.filter(organization=other).count() == 1
    assert CachePolicy.objects.get(pk=policy.pk).enabled and RoutingRule.objects.filter(pk=rule.pk).exists()
    assert not UpstreamHost.objects.filter(organization=org).exists() and CachePolicy.objects.count() == 1


def test_a_post_without_the_csrf_token_is_refused(people, org):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(people["admin"])
    assert strict.post("/settings/gateway/hosts/", {"new-host-host": "llm.internal"}).status_code == 403
    assert strict.post("/settings/gateway/providers/openai/", {"openai-api_key": SECRET}).status_code == 403
    assert not UpstreamHost.objects.exists() and not ProviderAccount.objects.exists()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', strict.get(PAGE).content.decode()).group(1)
    allowed = strict.post("/settings/gateway/hosts/", {"new-host-host": "llm.internal", "csrfmiddlewaretoken": token})
    assert allowed.status_code == 302 and UpstreamHost.objects.get().host == "llm.internal"


def test_the_actions_reject_get_and_require_login(client, people):
    urls = ["/settings/gateway/providers/openai/", "/settings/gateway/providers/openai/remove-key/",
            "/settings/gateway/hosts/", "/settings/gateway/hosts/1/remove/", "/settings/gateway/cache-policies/",
            "/settings/gateway/cache-policies/1/", "/settings/gateway/cache-policies/1/delete/",
            "/settings/gateway/routing-rules/", "/settings/gateway/routing-rules/1/delete/"]
    for url in [*urls, PAGE]:
        response = client.post(url) if url != PAGE else client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    admin = login(client, people, "admin")
    for url in urls:
        assert admin.get(url).status_code == 405, url
    assert admin.post(PAGE).status_code == 405


@pytest.mark.parametrize(("seconds", "label"), [
    (1, "1 s"), (45, "45 s"), (60, "1 min"), (61, "1 min 1 s"), (600, "10 min"), (3600, "1 h"), (5400, "1 h 30 min"),
    (3661, "1 h 1 min"), (86400, "1 day"), (90000, "1 day 1 h"), (172800, "2 days"), (2592000, "30 days"),
])
def test_a_time_to_live_reads_in_its_two_largest_units(seconds, label):
    assert ttl_label(seconds) == label
