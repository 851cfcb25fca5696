"""Provider keys are encrypted at rest, never shown again, and the vault's key comes from the environment or a
file only its owner can read."""

import stat
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from gateway import vault
from gateway.models import ProviderAccount
from gateway.services import set_provider_account
from gateway.upstreams import resolve

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture(autouse=True)
def own_home(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.GATEWAY_SECRET_KEY = ""


@pytest.mark.django_db
def test_a_stored_key_is_encrypted_and_only_its_last_four_characters_are_kept_in_clear(org, tmp_path):
    set_provider_account(org, "openai", api_key=SECRET)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM gateway_provideraccount")
        row = cursor.fetchone()
    assert not any(isinstance(value, str) and "abcdefghijklmnop" in value for value in row)
    account = ProviderAccount.objects.get()
    assert account.key_hint == "6789"
    assert resolve(org.pk, "openai").api_key == SECRET
    key_file = tmp_path / "gateway.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@pytest.mark.django_db
def test_a_key_from_the_environment_is_used_instead_of_the_file(org, settings, tmp_path):
    settings.GATEWAY_SECRET_KEY = "x" * 40
    set_provider_account(org, "anthropic", api_key=SECRET)

    assert not (tmp_path / "gateway.key").exists()
    settings.GATEWAY_SECRET_KEY = "y" * 40  # another key cannot read it
    with pytest.raises(vault.VaultError, match="store the provider key again"):
        vault.decrypt(ProviderAccount.objects.get().encrypted_api_key)


@pytest.mark.django_db
def test_the_command_reads_the_key_from_stdin_and_never_prints_it(org, monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO(SECRET + "\n"))
    out = StringIO()

    call_command("gateway_provider", "--org", org.slug, "--allow-host", "llm.internal:8000", "--provider", "openai",
                 "--base-url", "http://llm.internal:8000/v1", "--key-stdin", stdout=out)

    assert out.getvalue() == "allowed llm.internal:8000\nopenai: http://llm.internal:8000/v1, key …6789\n"
    assert resolve(org.pk, "openai").api_key == SECRET
