"""One canonical model per call: aliases, dated snapshots, vendor paths and Bedrock ids of one model group together."""

import pytest

from ingest.model_names import canonical_model


@pytest.mark.parametrize(("response_model", "request_model", "canonical"), [
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini", "gpt-4o-mini"),
    ("", "gpt-4o-mini", "gpt-4o-mini"),  # a failed call: only the alias it asked for
    ("GPT-4o-2024-08-06", "", "gpt-4o"),
    ("openai/gpt-4o", "", "gpt-4o"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("", "claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
    ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "", "claude-3-5-sonnet"),
    ("gemini-1.5-pro-002", "", "gemini-1.5-pro"),
    ("gpt-4-0613", "", "gpt-4"),
    ("o1-mini-2024-09-12", "o1-mini", "o1-mini"),
    ("text-embedding-3-small", "", "text-embedding-3-small"),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "", "ft:gpt-4o-mini-2024-07-18:acme::abc123"),
    ("", "", ""),
])
def test_it_names_every_call_of_one_model_alike(response_model, request_model, canonical):
    assert canonical_model(response_model, request_model) == canonical


def test_the_answering_model_wins_over_the_requested_alias():
    assert canonical_model("gpt-4o-2024-08-06", "gpt-4o-latest-router") == "gpt-4o"
