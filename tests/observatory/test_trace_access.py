"""A trace two teams share, ingested through the OTLP endpoint: a Search member's call page shows Search's spans and
calls only (the others as a count), an org admin's shows all of it, and a Search key reads only Search's calls of
the trace through the REST API.
"""

import pytest
from django.contrib.auth import get_user_model

from ingest.models import LLMCall, TraceSpan
from observatory.access import viewer_in
from observatory.models import Membership, Role
from observatory.services import create_api_key
from tests.ingest.test_context_spans import (
    ADS_MODEL,
    ADS_SECRET_QUERY,
    TRACE_ID,
    hex_id,
    ingest_with_call_attributes,
    ingest_with_team_keys,
)

ADS_TEXT = (ADS_SECRET_QUERY, "ads_secret_bids", "globex", "POST /auction", ADS_MODEL)
SEARCH_TREE = [("POST /search", 0), ("chat gpt-4o-mini", 1), ("GET /auction", 1)]
WHOLE_TREE = [("POST /search", 0), ("chat gpt-4o-mini", 1), ("GET /auction", 1), ("POST /auction", 2),
              (f"chat {ADS_MODEL}", 3), (ADS_SECRET_QUERY, 3)]


@pytest.fixture(params=[ingest_with_team_keys, ingest_with_call_attributes], ids=["team-keys", "call-attributes"])
def shared_trace(request, client, org, team, other_team):
    request.param(client, org, team, other_team)
    return org


def member(org, team, role=Role.VIEWER, name="vera"):
    account = get_user_model().objects.create_user(name)
    Membership.objects.create(user=account, organization=org, team=team, role=role)
    return account


def page_of(client, user, span: str):
    client.force_login(user)
    return client.get(f"/calls/{TRACE_ID.hex()}/{hex_id(span)}/")


def test_a_team_member_sees_only_their_teams_spans_of_a_shared_trace(client, shared_trace, team):
    response = page_of(client, member(shared_trace, team), "search-call")
    assert response.status_code == 200
    assert [(node.name, node.depth) for node in response.context["trace"]] == SEARCH_TREE
    assert response.context["spans_outside"] == 3
    content = response.content.decode()
    assert "3 spans outside your access" in content
    assert [text for text in ADS_TEXT if text in content] == []


def test_an_org_admin_sees_every_span_of_the_trace(client, shared_trace):
    response = page_of(client, member(shared_trace, None, Role.ADMIN, "alice"), "search-call")
    assert [(node.name, node.depth) for node in response.context["trace"]] == WHOLE_TREE
    assert response.context["spans_outside"] == 0
    assert b"outside your access" not in response.content
    assert ADS_SECRET_QUERY.encode() in response.content


def test_the_other_team_sees_its_own_side_only(client, shared_trace, team, other_team):
    response = page_of(client, member(shared_trace, other_team, name="adam"), "ads-call")
    assert [(node.name, node.depth) for node in response.context["trace"]] == [
        ("POST /auction", 0), (f"chat {ADS_MODEL}", 1), (ADS_SECRET_QUERY, 1),
    ]
    assert response.context["spans_outside"] == 3
    assert b"POST /search" not in response.content
    assert page_of(client, member(shared_trace, team, name="vera"), "ads-call").status_code == 404


def test_spans_without_a_team_are_for_org_wide_viewers_only(client, shared_trace, team):
    TraceSpan.objects.filter(span_id=hex_id("search-hop")).update(team=None)
    response = page_of(client, member(shared_trace, team), "search-call")
    assert [node.name for node in response.context["trace"]] == ["POST /search", "chat gpt-4o-mini"]
    assert response.context["spans_outside"] == 4


def test_a_team_key_reads_only_its_teams_calls_of_the_trace(client, shared_trace, team):
    key = create_api_key(shared_trace, "Search reader", team=team)
    response = client.get("/api/v1/calls", {"trace_id": TRACE_ID.hex()}, HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 200
    assert [(row["span_id"], row["team"]) for row in response.json()["results"]] == [(hex_id("search-call"), "search")]
    assert [text for text in ADS_TEXT if text in response.content.decode()] == []


def test_a_team_keys_viewer_reads_only_its_teams_spans(shared_trace, team):
    viewer = viewer_in(None, shared_trace, create_api_key(shared_trace, "Search reader", team=team).api_key)
    spans = viewer.readable(TraceSpan.objects.all())
    assert sorted(span.name for span in spans) == ["GET /auction", "POST /search"]
    assert viewer.unreadable_count(TraceSpan.objects.all()) == 2
    assert viewer.unreadable_count(LLMCall.objects.all()) == 1
