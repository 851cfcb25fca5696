"""Cost of a call from the shipped catalog, checked against figures worked out by hand (no database)."""

from decimal import Decimal

import pytest

from billing.pricing.calls import (
    CallUsage,
    PriceIndex,
    PriceOverride,
    apply_override,
    implausibility,
    price_call,
    resolve_price,
)
from billing.pricing.catalog import DEFAULT_CATALOG_PATH, PriceSpec, diff_catalogs, load_catalog, parse_catalog
from ingest.model_names import normalize_model_name


@pytest.fixture(scope="module")
def specs():
    return load_catalog(DEFAULT_CATALOG_PATH)


@pytest.fixture(scope="module")
def index(specs):
    return PriceIndex(specs)


@pytest.fixture(scope="module")
def by_key(specs):
    return {spec.key: spec for spec in specs}


def amounts(breakdown):
    return {line.token_class: (line.tokens, line.amount) for line in breakdown.lines}


# Resolution


def test_it_prefers_the_exact_dated_snapshot(index):
    spec = resolve_price("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", index)
    assert spec.key == "gpt-4o-mini-2024-07-18"


def test_it_falls_back_from_an_unlisted_snapshot_to_the_model(index):
    spec = resolve_price("openai", "gpt-4o-mini-2031-01-01", "", index)
    assert spec.key == "gpt-4o-mini"


def test_it_strips_provider_prefixes(index):
    assert resolve_price("openai", "openai/gpt-4o", "", index).key == "gpt-4o"
    assert resolve_price("anthropic", "anthropic/claude-sonnet-4-5", "", index).key == "claude-sonnet-4-5"
    assert resolve_price("gcp.gemini", "models/gemini-2.5-pro", "", index).key == "gemini/gemini-2.5-pro"
    assert resolve_price("azure.ai.openai", "azure/gpt-4o", "", index).key == "azure/gpt-4o"


def test_it_resolves_snapshot_suffixes(index):
    assert resolve_price("anthropic", "claude-haiku-5-5-20991231", "", index).key == "claude-haiku-5-5"
    assert resolve_price("anthropic", "claude-haiku-5-5-latest", "", index).key == "claude-haiku-5-5"
    assert resolve_price("openai", "gpt-5-2099-01-01", "", index).key == "gpt-5"


def test_it_resolves_vertex_and_bedrock_model_ids(index):
    vertex = resolve_price("gcp.vertex_ai", "claude-3-5-sonnet@20240620", "", index)
    assert vertex.key == "vertex_ai/claude-3-5-sonnet@20240620"
    profile = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    bedrock = resolve_price("aws.bedrock", profile, "", index)
    assert bedrock.key == "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert bedrock.provider == "aws.bedrock"
    # OpenLLMetry strips the vendor from Bedrock ids: the Bedrock price is still found, not another reseller's
    stripped = resolve_price("aws.bedrock", "claude-3-5-sonnet-20240620-v1:0", "", index)
    assert (stripped.key, stripped.provider) == ("anthropic.claude-3-5-sonnet-20240620-v1:0", "aws.bedrock")


def test_it_prefers_the_calls_provider(index):
    assert resolve_price("gcp.gemini", "gemini-2.5-pro", "", index).key == "gemini/gemini-2.5-pro"
    assert resolve_price("gcp.vertex_ai", "gemini-2.5-pro", "", index).key == "gemini-2.5-pro"
    assert resolve_price("azure.ai.openai", "gpt-4o-mini-2024-07-18", "", index).key == "azure/gpt-4o-mini-2024-07-18"


def test_it_accepts_litellm_provider_names(index):
    assert resolve_price("gemini", "gemini-2.5-pro", "", index).provider == "gcp.gemini"


def test_it_ignores_case(index):
    assert resolve_price("OpenAI", "GPT-4o-Mini", "", index).key == "gpt-4o-mini"


def test_it_uses_the_request_model_when_the_response_model_is_unknown(index):
    assert resolve_price("openai", "", "gpt-4o", index).key == "gpt-4o"
    assert resolve_price("openai", "acme-proxy-alias", "gpt-4o", index).key == "gpt-4o"


def test_it_returns_none_for_an_unknown_model(index):
    assert resolve_price("openai", "acme-finetune-xyz", "acme-finetune-xyz", index) is None


def test_it_prices_fine_tunes_only_at_fine_tune_prices(index):
    spec = resolve_price("openai", "ft:gpt-4o-mini-2024-07-18:acme::9abc", "", index)
    assert spec.key == "ft:gpt-4o-mini-2024-07-18"
    assert resolve_price("openai", "ft:acme-base:acme::9abc", "", index) is None


def test_it_lists_name_candidates_most_specific_first():
    assert normalize_model_name("openai/gpt-4o-mini-2024-07-18") == [
        "openai/gpt-4o-mini-2024-07-18",
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-mini",
    ]
    assert normalize_model_name("claude-sonnet-4-5-20250929") == ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5"]
    assert normalize_model_name("claude-3-5-sonnet@20240620") == ["claude-3-5-sonnet@20240620", "claude-3-5-sonnet"]
    assert normalize_model_name("gemini-2.5-flash-preview-05-20") == [
        "gemini-2.5-flash-preview-05-20",
        "gemini-2.5-flash-preview",
    ]
    assert normalize_model_name("eu.anthropic.claude-3-5-sonnet-20240620-v1:0") == [
        "eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-3-5-sonnet-20240620",
        "claude-3-5-sonnet-20240620",
        "claude-3-5-sonnet",
    ]
    assert normalize_model_name("gpt-4-0613") == ["gpt-4-0613", "gpt-4"]
    assert normalize_model_name("  ") == []


def test_it_keeps_context_length_suffixes_that_are_not_dates():
    assert normalize_model_name("llama3-70b-8192") == ["llama3-70b-8192"]


# Pricing


def test_it_prices_cached_input_and_reasoning_for_gpt_4o_mini(index):
    spec = resolve_price("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", index)
    usage = CallUsage(input_tokens=1200, cached_input_tokens=1024, output_tokens=85, reasoning_tokens=64)
    breakdown = price_call(usage, spec)
    assert amounts(breakdown) == {
        "input": (176, Decimal("0.0000264")),
        "cached_input_read": (1024, Decimal("0.0000768")),
        "output": (85, Decimal("0.000051")),
    }
    assert breakdown.total == Decimal("0.0001542")
    assert str(breakdown.total) == "0.0001542000"


def test_it_prices_cache_reads_and_writes_for_claude_sonnet_4_5(index):
    spec = resolve_price("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", index)
    usage = CallUsage(input_tokens=1842, cached_input_tokens=1500, cache_write_tokens=300, output_tokens=77)
    breakdown = price_call(usage, spec)
    assert amounts(breakdown) == {
        "input": (42, Decimal("0.000126")),
        "cached_input_read": (1500, Decimal("0.00045")),
        "cache_write": (300, Decimal("0.001125")),
        "output": (77, Decimal("0.001155")),
    }
    assert breakdown.total == Decimal("0.002856")


def test_it_prices_one_hour_cache_writes(by_key):
    usage = CallUsage(input_tokens=1000, cache_write_tokens=400, cache_write_1h_tokens=400)
    # 600 x $3/M + 400 x $6/M
    assert price_call(usage, by_key["claude-sonnet-4-5"]).total == Decimal("0.0042")


def test_it_prices_an_embedding(index):
    spec = resolve_price("openai", "text-embedding-3-small", "", index)
    assert price_call(CallUsage(input_tokens=18), spec).total == Decimal("0.00000036")


def test_it_bills_cache_reads_at_the_input_price_when_the_catalog_has_no_cache_price(index):
    spec = resolve_price("gcp.vertex_ai", "claude-3-5-sonnet@20240620", "", index)
    usage = CallUsage(input_tokens=1000, cached_input_tokens=800)
    assert price_call(usage, spec).total == Decimal("0.003")


def test_it_prices_reasoning_tokens_at_their_own_price(by_key):
    # dashscope/qwen-turbo: input $0.05/M, output $0.20/M, reasoning $0.50/M
    usage = CallUsage(input_tokens=1000, output_tokens=100, reasoning_tokens=60)
    breakdown = price_call(usage, by_key["dashscope/qwen-turbo"])
    assert amounts(breakdown) == {
        "input": (1000, Decimal("0.00005")),
        "output": (40, Decimal("0.000008")),
        "reasoning": (60, Decimal("0.00003")),
    }
    assert breakdown.total == Decimal("0.000088")


def test_it_bills_the_whole_call_at_long_context_prices_above_200k(by_key):
    # gemini/gemini-2.5-pro above 200k input: input $2.50/M, cache read $0.25/M, output $15/M
    usage = CallUsage(input_tokens=250_000, cached_input_tokens=50_000, output_tokens=2_000)
    breakdown = price_call(usage, by_key["gemini/gemini-2.5-pro"])
    assert breakdown.tier_threshold == 200_000
    assert amounts(breakdown) == {
        "input": (200_000, Decimal("0.5")),
        "cached_input_read": (50_000, Decimal("0.0125")),
        "output": (2_000, Decimal("0.03")),
    }
    assert breakdown.total == Decimal("0.5425")


def test_it_keeps_standard_prices_at_exactly_200k(by_key):
    usage = CallUsage(input_tokens=200_000, output_tokens=1_000)
    breakdown = price_call(usage, by_key["gemini/gemini-2.5-pro"])
    assert breakdown.tier_threshold is None
    assert breakdown.total == Decimal("0.26")  # 200,000 x $1.25/M + 1,000 x $10/M


def test_it_prices_a_batch_call(index):
    spec = resolve_price("openai", "gpt-4o-mini", "", index)
    breakdown = price_call(CallUsage(input_tokens=1000, output_tokens=500), spec, variant="batch")
    assert breakdown.variant == "batch"
    assert breakdown.total == Decimal("0.000225")  # 1000 x $0.075/M + 500 x $0.30/M


def test_it_prices_batch_cache_reads_and_writes(by_key):
    usage = CallUsage(input_tokens=1842, cached_input_tokens=1500, cache_write_tokens=300, output_tokens=77)
    breakdown = price_call(usage, by_key["claude-sonnet-4-5-20250929"], variant="batch")
    # 42 x $1.50/M + 1500 x $0.15/M + 300 x $1.875/M + 77 x $7.50/M
    assert breakdown.total == Decimal("0.001428")


def test_it_prices_a_batch_call_above_the_long_context_threshold(by_key):
    usage = CallUsage(input_tokens=250_000, cached_input_tokens=50_000, output_tokens=2_000)
    breakdown = price_call(usage, by_key["gemini/gemini-2.5-pro"], variant="batch")
    # 200,000 x $1.25/M + 50,000 x $0.25/M + 2,000 x $7.50/M
    assert breakdown.total == Decimal("0.2775")


def test_it_uses_standard_tier_prices_where_a_variant_has_none(by_key):
    usage = CallUsage(input_tokens=250_000, cached_input_tokens=50_000, output_tokens=2_000)
    assert price_call(usage, by_key["gemini/gemini-2.5-pro"], variant="flex").total == Decimal("0.5425")


def test_it_uses_standard_prices_when_the_model_has_no_such_variant(by_key):
    breakdown = price_call(CallUsage(input_tokens=1000), by_key["claude-sonnet-4-5"], variant="flex")
    assert breakdown.variant == "standard"
    assert breakdown.total == Decimal("0.003")


def test_it_rejects_an_unknown_variant(by_key):
    with pytest.raises(ValueError):
        price_call(CallUsage(input_tokens=10), by_key["gpt-4o-mini"], variant="overnight")


def test_it_rounds_the_total_half_even_to_ten_places():
    spec = PriceSpec(key="tiny", provider="test", model="tiny", mode="chat", input=Decimal("1E-11"), output=Decimal(0))
    assert price_call(CallUsage(input_tokens=25), spec).total == Decimal("2E-10")
    assert price_call(CallUsage(input_tokens=35), spec).total == Decimal("4E-10")


def test_it_prices_a_call_without_tokens_at_zero(by_key):
    breakdown = price_call(CallUsage(input_tokens=0, status="error"), by_key["gpt-4o"])
    assert breakdown.lines == ()
    assert breakdown.total == Decimal(0)


def test_it_rejects_cached_tokens_beyond_the_input_total():
    with pytest.raises(ValueError):
        CallUsage(input_tokens=100, cached_input_tokens=90, cache_write_tokens=20)
    with pytest.raises(ValueError):
        CallUsage(input_tokens=100, output_tokens=5, reasoning_tokens=6)


# Organization overrides


def test_it_applies_a_percentage_discount(index):
    spec = resolve_price("openai", "gpt-4o-mini-2024-07-18", "", index)
    discounted = apply_override(spec, PriceOverride(discount_percent=Decimal("20")))
    usage = CallUsage(input_tokens=1200, cached_input_tokens=1024, output_tokens=85, reasoning_tokens=64)
    assert discounted.input == Decimal("1.2E-7")
    assert price_call(usage, discounted).total == Decimal("0.00012336")  # 0.0001542 x 0.8


def test_it_discounts_long_context_prices_too(by_key):
    discounted = apply_override(by_key["gemini/gemini-2.5-pro"], PriceOverride(discount_percent=Decimal("20")))
    usage = CallUsage(input_tokens=250_000, cached_input_tokens=50_000, output_tokens=2_000)
    assert price_call(usage, discounted).total == Decimal("0.434")  # 0.5425 x 0.8


def test_it_applies_per_class_prices(index):
    spec = resolve_price("openai", "gpt-4o-mini-2024-07-18", "", index)
    negotiated = apply_override(spec, PriceOverride(input=Decimal("1E-7"), output=Decimal("5E-7")))
    usage = CallUsage(input_tokens=1200, cached_input_tokens=1024, output_tokens=85, reasoning_tokens=64)
    # 176 x $0.10/M + 1024 x $0.075/M (catalog cache price kept) + 85 x $0.50/M
    assert price_call(usage, negotiated).total == Decimal("0.0001369")


def test_it_bills_a_negotiated_price_in_every_tier(by_key):
    negotiated = apply_override(by_key["gemini/gemini-2.5-pro"], PriceOverride(input=Decimal("1E-6")))
    usage = CallUsage(input_tokens=250_000, cached_input_tokens=50_000, output_tokens=2_000)
    # 200,000 x $1/M (negotiated) + 50,000 x $0.25/M + 2,000 x $15/M (catalog tier prices)
    assert price_call(usage, negotiated).total == Decimal("0.2425")


def test_it_rejects_an_override_that_is_both_or_neither():
    with pytest.raises(ValueError):
        PriceOverride(discount_percent=Decimal("10"), input=Decimal("1E-7"))
    with pytest.raises(ValueError):
        PriceOverride()
    with pytest.raises(ValueError):
        PriceOverride(discount_percent=Decimal("120"))


# Catalog


def test_it_parses_the_shipped_catalog():
    import json

    with open(DEFAULT_CATALOG_PATH, encoding="utf-8") as handle:
        data = json.load(handle)
    parsed = parse_catalog(data)
    assert len(data) == 4553  # 4,552 models + sample_spec
    assert len(parsed.specs) == 3728
    assert len(parsed.skipped) == 824
    assert "sample_spec" not in {spec.key for spec in parsed.specs} | set(parsed.skipped)
    assert "azure/high/1024-x-1024/gpt-image-1" in parsed.skipped  # priced per pixel


def test_it_reads_prices_as_exact_decimals(by_key):
    spec = by_key["gpt-4o-mini"]
    assert str(spec.input) == "1.5E-7"
    assert spec.cached_input_read == Decimal("7.5E-8")
    assert spec.reasoning is None
    assert [tier.threshold for tier in by_key["gemini/gemini-2.5-pro"].tiers] == [200_000]
    assert by_key["claude-sonnet-4-5"].cache_write_1h == Decimal("0.000006")
    assert by_key["claude-sonnet-4-5"].variant("batch").prices.cache_write == Decimal("1.875E-6")


def test_it_names_providers_and_models_the_otel_way(by_key):
    assert by_key["gemini/gemini-2.5-pro"].provider == "gcp.gemini"
    assert by_key["gemini-2.5-pro"].provider == "gcp.vertex_ai"
    assert by_key["vertex_ai/claude-3-5-sonnet@20240620"].provider == "gcp.vertex_ai"
    assert by_key["azure/gpt-4o"].provider == "azure.ai.openai"
    assert by_key["anthropic.claude-sonnet-4-5-20250929-v1:0"].provider == "aws.bedrock"
    assert by_key["deepseek/deepseek-chat"].provider == "deepseek"
    spec = by_key["gemini/gemini-2.5-pro"]
    assert spec.model == "gemini-2.5-pro"
    assert spec.aliases == ("gemini/gemini-2.5-pro",)
    assert by_key["gpt-4o"].aliases == ()


def test_it_diffs_two_catalogs():
    old = parse_catalog(
        {
            "model-a": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
            "model-b": {"litellm_provider": "openai", "input_cost_per_token": 3e-06, "output_cost_per_token": 4e-06},
        }
    ).specs
    new = parse_catalog(
        {
            "model-a": {
                "litellm_provider": "openai",
                "input_cost_per_token": 1e-06,
                "output_cost_per_token": 2.5e-06,
                "input_cost_per_token_batches": 5e-07,
            },
            "model-c": {"litellm_provider": "mistral", "input_cost_per_token": 1e-07, "output_cost_per_token": 3e-07},
        }
    ).specs
    diff = diff_catalogs(list(old), list(new))
    assert [spec.key for spec in diff.added] == ["model-c"]
    assert diff.added[0].provider == "mistral_ai"
    assert [spec.key for spec in diff.removed] == ["model-b"]
    assert len(diff.changed) == 1
    change = diff.changed[0]
    assert change.key == "model-a"
    assert {(c.field, c.old, c.new) for c in change.changes} == {
        ("output", Decimal("0.000002"), Decimal("0.0000025")),
        ("batch.input", None, Decimal("5E-7")),
    }


def test_it_finds_no_changes_between_identical_catalogs(specs):
    diff = diff_catalogs(specs, list(specs))
    assert (diff.added, diff.removed, diff.changed) == ((), (), ())


# Implausible values: stored, flagged, never billed ------------------------------------------------------------------

def test_more_input_than_the_context_window_is_implausible(by_key):
    mini = by_key["gpt-4o-mini"]
    assert implausibility(2_000_000, 85, 900.0, mini) == (
        "2,000,000 input tokens, more than the 128,000-token context window of gpt-4o-mini")
    assert implausibility(128_000, 85, 900.0, mini) is None  # a full window is real


def test_more_output_than_the_model_can_write_is_implausible(by_key):
    assert implausibility(1_200, 20_000, 900.0, by_key["gpt-4o-mini"]) == (
        "20,000 output tokens, more than the 16,384 gpt-4o-mini can write")


def test_the_fuzzed_15000_dollar_call_is_implausible(by_key):
    o1_pro = by_key["o1-pro"]
    assert price_call(CallUsage(input_tokens=100_000_000), o1_pro).total == Decimal("15000")  # what it was billed
    assert implausibility(100_000_000, 0, 900.0, o1_pro).startswith("100,000,000 input tokens")


def test_a_call_over_a_day_long_is_implausible_even_without_a_price():
    assert implausibility(10, 5, 90_000_000.0, None) == "lasted 25.0 hours, more than a day"
    assert implausibility(10_000_000, 5, 86_400_000.0, None) is None  # an unknown model has no known limits


def test_token_limits_spare_embeddings_batches_and_windows_the_catalog_outgrew(by_key):
    assert implausibility(50_000, 0, 300.0, by_key["text-embedding-3-small"]) is None  # many inputs of ≤ 8,191
    bedrock_sonnet = by_key["anthropic.claude-sonnet-4-5-20250929-v1:0"]
    assert (bedrock_sonnet.max_input_tokens, bedrock_sonnet.tiers[0].threshold) == (200_000, 200_000)
    assert implausibility(500_000, 900, 30_000.0, bedrock_sonnet) is None  # billed above 200k: the window is larger
