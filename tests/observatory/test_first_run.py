"""The first run's key (what `observatory up` prints): the organization's, so calls that name no team stay
unattributed, as the overview promises, and teams are named as the calls type them."""

import argparse
from pathlib import Path

import pytest

from ingest.models import LLMCall
from observatory.launcher import banner
from observatory.models import Team
from observatory.services import ensure_first_admin
from tests.ingest.test_otlp_http import CHAT, make_request


@pytest.mark.django_db
def test_the_first_key_has_no_team_and_calls_without_one_stay_unattributed(client):
    first = ensure_first_admin()
    assert not Team.objects.exists()
    for attributes in (CHAT, {**CHAT, "observatory.team": "growth"}, {**CHAT, "observatory.team": "Platform"}):
        response = client.post("/v1/traces", data=make_request([attributes]).SerializeToString(),
                               content_type="application/x-protobuf", HTTP_AUTHORIZATION=f"Bearer {first.api_key}")
        assert response.status_code == 200
    assert sorted((call.team.name if call.team else "") for call in LLMCall.objects.select_related("team")) == \
        ["", "Platform", "growth"]


@pytest.mark.django_db
def test_the_banner_says_the_key_leaves_calls_without_a_team_unattributed(capsys):
    first = ensure_first_admin()
    banner(argparse.Namespace(host="127.0.0.1", port=8000, no_grpc=True), first, Path("/tmp/logs"))
    out = capsys.readouterr().out
    assert f"ingest API key: {first.api_key}" in out
    assert "an organization key: calls that name no team (observatory.team) stay unattributed" in out
