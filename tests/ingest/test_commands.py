"""Management commands a user runs: create_api_key and replay_otlp."""

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ingest.models import LLMCall
from observatory.models import ApiKey, Organization
from observatory.services import authenticate_key

DATA = Path(__file__).resolve().parents[1] / "data" / "otlp"


@pytest.mark.django_db
def test_create_api_key_prints_the_key_last_and_creates_what_is_missing():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "--team", "search", "--product", "answers", "--create", stdout=out, stderr=err)
    key = out.getvalue().strip().splitlines()[-1]
    api_key = authenticate_key(key)
    assert api_key.default_team.slug == "search" and api_key.default_product.slug == "answers"
    assert Organization.objects.filter(slug="default").exists()
    assert "shown once" in err.getvalue()


@pytest.mark.django_db
def test_create_api_key_refuses_an_unknown_team_without_create(org):
    with pytest.raises(CommandError, match="no team 'nope' in acme; add --create"):
        call_command("create_api_key", "--team", "nope", "--org", "acme")
    assert ApiKey.objects.count() == 0


@pytest.mark.django_db
def test_replay_otlp_stores_the_corpus_once(api_key):
    out = io.StringIO()
    call_command("replay_otlp", str(DATA / "traceloop"), "--key", api_key.plaintext, stdout=out, stderr=io.StringIO())
    first = LLMCall.objects.count()
    assert first > 0
    assert f"{first} new calls" in out.getvalue()
    out = io.StringIO()
    call_command("replay_otlp", str(DATA / "traceloop"), "--key", api_key.plaintext, stdout=out, stderr=io.StringIO())
    assert LLMCall.objects.count() == first
    assert "0 new calls" in out.getvalue()


@pytest.mark.django_db
def test_replay_otlp_needs_a_key():
    with pytest.raises(CommandError, match="give --key"):
        call_command("replay_otlp", str(DATA))
