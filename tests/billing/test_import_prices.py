"""`import_prices <file>`: applies a LiteLLM-format catalog with a diff summary; bad files get a clear error."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from billing.models import Price
from billing.services import load_default_catalog


@pytest.fixture
def catalog(db):
    load_default_catalog()


def _write(tmp_path, data) -> str:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_it_adds_changes_and_reports(catalog, tmp_path):
    path = _write(tmp_path, {
        "sample_spec": {"litellm_provider": "openai"},
        "gpt-4o-mini": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2e-07,
                        "output_cost_per_token": 6e-07, "cache_read_input_token_cost": 7.5e-08},
        "acme-llm-9": {"litellm_provider": "acme", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
    })
    out = io.StringIO()
    call_command("import_prices", path, "--effective-from", "2026-11-20T00:00:00", stdout=out)
    text = out.getvalue()
    assert "1 added, 1 changed, 0 unchanged" in text
    assert "+ acme/acme-llm-9" in text
    assert "input 0.00000015 → 0.0000002" in text
    versions = Price.objects.filter(provider="openai", key="gpt-4o-mini").order_by("effective_from")
    assert [str(v.input.normalize()) for v in versions] == ["1.5E-7", "2E-7"]
    assert versions[0].effective_to == versions[1].effective_from


def test_a_dry_run_changes_nothing(catalog, tmp_path):
    before = Price.objects.count()
    path = _write(tmp_path, {"acme-llm-9": {"litellm_provider": "acme", "input_cost_per_token": 1e-06,
                                            "output_cost_per_token": 2e-06}})
    out = io.StringIO()
    call_command("import_prices", path, "--dry-run", stdout=out)
    assert "dry run" in out.getvalue() and "1 added" in out.getvalue()
    assert Price.objects.count() == before


def test_it_rejects_a_file_that_is_not_json(db, tmp_path):
    path = tmp_path / "prices.json"
    path.write_text("{nope")
    with pytest.raises(CommandError, match="is not valid JSON"):
        call_command("import_prices", str(path))


def test_it_rejects_a_bad_date(db, tmp_path):
    with pytest.raises(CommandError, match="is not an ISO date-time"):
        call_command("import_prices", _write(tmp_path, {}), "--effective-from", "last tuesday")
