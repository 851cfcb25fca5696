from datetime import timedelta

import pytest
from django.utils import timezone

from observatory.models import ApiKey
from observatory.services import authenticate_key, create_api_key, hash_key, revoke_api_key


@pytest.mark.django_db
def test_it_stores_only_a_hash(org, team):
    new = create_api_key(org, "ci", team=team)
    row = ApiKey.objects.get(pk=new.api_key.pk)
    assert new.plaintext.startswith(f"obs_{row.prefix}_")
    assert row.key_hash == hash_key(new.plaintext)
    assert new.plaintext not in (row.key_hash, row.prefix, row.name)
    assert len(new.plaintext) > 40


@pytest.mark.django_db
def test_it_finds_the_key_by_prefix_and_checks_the_secret(org, team):
    new = create_api_key(org, "ci", team=team)
    found = authenticate_key(new.plaintext)
    assert found.pk == new.api_key.pk
    assert found.default_team == team
    tampered = new.plaintext[:-2] + ("aa" if not new.plaintext.endswith("aa") else "bb")
    assert authenticate_key(tampered) is None


@pytest.mark.django_db
def test_it_rejects_malformed_keys(org):
    create_api_key(org, "ci")
    for junk in ["", "Bearer x", "obs_", "obs_short_secret", "sk-123", "obs_" + "z" * 12]:
        assert authenticate_key(junk) is None


@pytest.mark.django_db
def test_it_rejects_a_revoked_key(org):
    new = create_api_key(org, "ci")
    revoke_api_key(new.api_key)
    assert authenticate_key(new.plaintext) is None


@pytest.mark.django_db
def test_it_records_last_use_at_most_once_a_minute(org):
    new = create_api_key(org, "ci")
    assert new.api_key.last_used_at is None
    authenticate_key(new.plaintext)
    first = ApiKey.objects.get(pk=new.api_key.pk).last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=5)
    authenticate_key(new.plaintext)
    assert ApiKey.objects.get(pk=new.api_key.pk).last_used_at == first
