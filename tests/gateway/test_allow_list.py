"""Upstream hosts come from the allow-list and the organization's settings, never from a request: whatever a request
says, the gateway contacts no other host."""

import openai
import pytest

from gateway.models import ProviderAccount, UpstreamHost
from gateway.services import allow_upstream_host, set_provider_account
from gateway.upstreams import host_allowed, normalize_host, upstream_cache
from tests.sdk.sdk_fakes import FakeProviderServer

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def elsewhere():
    server = FakeProviderServer()
    yield server
    server.close()


@pytest.mark.django_db(transaction=True)
def test_nothing_in_a_request_sends_it_to_another_host(gw, oai, provider, elsewhere):
    other = elsewhere.url
    oai.chat.completions.create(
        model="gpt-4o-mini", messages=HI,
        extra_headers={"Host": other.removeprefix("http://"), "x-upstream-base-url": other, "x-forwarded-host": other,
                       "x-upstream-host": other, "Forwarded": f"host={other}"},
        extra_query={"base_url": other, "api_base": other},
        extra_body={"base_url": other, "api_base": other, "url": other},
    )

    assert elsewhere.requests == []
    assert len(provider.requests) == 1 and provider.requests[0]["path"] == "/v1/chat/completions"  # no query either
    assert len(gw.calls(1)) == 1


@pytest.mark.django_db(transaction=True)
def test_an_upstream_off_the_allow_list_is_refused_without_contacting_it(gw, oai, org, elsewhere):
    ProviderAccount.objects.filter(organization=org, provider="openai").update(base_url=elsewhere.url + "/v1")
    upstream_cache.clear()

    with pytest.raises(openai.PermissionDeniedError) as refused:
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert refused.value.status_code == 403 and refused.value.code == "upstream_not_allowed"
    assert f"the openai upstream '127.0.0.1:{elsewhere.server_address[1]}' is not on the gateway's allow-list" \
        in refused.value.message
    assert elsewhere.requests == [] and gw.calls(0) == []


@pytest.mark.django_db(transaction=True)
def test_hosts_allowed_by_the_setting_work_without_an_organization_entry(gw, oai, org, provider, settings):
    UpstreamHost.objects.filter(organization=org).delete()
    upstream_cache.clear()
    with pytest.raises(openai.PermissionDeniedError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI)

    settings.GATEWAY_ALLOWED_HOSTS = [f"127.0.0.1:{provider.server_address[1]}"]
    upstream_cache.clear()
    answer = oai.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert answer.choices[0].message.content


@pytest.mark.django_db
def test_an_account_cannot_point_at_a_host_that_is_not_allowed(org):
    with pytest.raises(ValueError, match="is not on the gateway's allow-list"):
        set_provider_account(org, "openai", base_url="http://10.0.0.8:8000/v1")
    allow_upstream_host(org, "10.0.0.8:8000")

    account = set_provider_account(org, "openai", base_url="http://10.0.0.8:8000/v1")

    assert account.base_url == "http://10.0.0.8:8000/v1"


def test_the_allow_list_matches_hosts_and_ports_exactly():
    allowed = frozenset({"llm.internal", "10.0.0.8:8000"})

    assert host_allowed("https://api.openai.com/v1", frozenset())
    assert host_allowed("http://llm.internal:9000/v1", allowed)  # a bare host allows any port
    assert host_allowed("http://10.0.0.8:8000/v1", allowed)
    assert not host_allowed("http://10.0.0.8:8001/v1", allowed)
    assert not host_allowed("https://api.openai.com.evil.example/v1", frozenset())
    assert not host_allowed("https://user:pw@api.openai.com/v1", frozenset())
    assert not host_allowed("file:///etc/passwd", allowed)


@pytest.mark.parametrize("entry", ["http://llm.internal", "llm.internal/v1", "user@llm.internal", "llm.internal:port", ""])
def test_an_allow_list_entry_is_a_host_and_nothing_else(entry):
    with pytest.raises(ValueError):
        normalize_host(entry)


def test_an_allow_list_entry_is_kept_lowercase_with_its_port():
    assert normalize_host(" LLM.Internal:8000 ") == "llm.internal:8000"


@pytest.mark.django_db(transaction=True)
def test_an_organizations_host_on_an_internal_address_is_refused_unless_the_operator_allows_that_network(
        gw, oai, org, provider, settings):
    settings.GATEWAY_PRIVATE_NETWORKS = []
    upstream_cache.clear()

    with pytest.raises(openai.APIStatusError) as refused:
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert refused.value.status_code == 502
    assert "127.0.0.1 resolves to 127.0.0.1, a loopback address" in refused.value.message
    assert "OBSERVATORY_GATEWAY_PRIVATE_NETWORKS" in refused.value.message
    assert provider.requests == []  # nothing was sent
    failed = gw.calls(1)[0]
    assert (failed.status, failed.http_status, failed.cost_usd) == ("error", 502, 0)

    settings.GATEWAY_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    assert oai.chat.completions.create(model="gpt-4o-mini", messages=HI).choices[0].message.content


@pytest.mark.django_db(transaction=True)
def test_a_name_that_resolves_to_an_internal_address_is_refused_and_the_operators_hosts_are_trusted(
        gw, oai, org, provider, settings):
    port = provider.server_address[1]
    settings.GATEWAY_PRIVATE_NETWORKS = []
    UpstreamHost.objects.filter(organization=org).delete()
    allow_upstream_host(org, f"localhost:{port}")  # a name, as a DNS answer pointing inside would be
    set_provider_account(org, "openai", base_url=f"http://localhost:{port}/v1")

    with pytest.raises(openai.APIStatusError) as refused:
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert refused.value.status_code == 502 and "localhost resolves to" in refused.value.message
    assert provider.requests == []

    settings.GATEWAY_ALLOWED_HOSTS = [f"localhost:{port}"]  # the operator's own list may point anywhere
    assert oai.chat.completions.create(model="gpt-4o-mini", messages=HI).choices[0].message.content


def test_the_address_check_refuses_the_metadata_service_and_private_ranges_but_not_public_ones(settings):
    import ipaddress

    from gateway.upstreams import address_refusal

    settings.GATEWAY_PRIVATE_NETWORKS = ["10.1.0.0/16"]
    settings.GATEWAY_ALLOWED_HOSTS = []
    check = lambda ip: address_refusal("llm.example.com", 443, ipaddress.ip_address(ip))  # noqa: E731

    assert "metadata" in check("169.254.169.254")
    assert "a private address" in check("10.2.0.5") and "a private address" in check("192.168.1.9")
    assert "loopback" in check("::ffff:127.0.0.1")
    assert check("10.1.4.4") is None  # inside the operator's private network
    assert check("104.18.6.192") is None
    assert address_refusal("api.openai.com", 443, ipaddress.ip_address("10.9.9.9")) is None  # a provider's public API
