"""Model names as reported and as grouped: the names a reported model is looked up by (vendor paths, Bedrock
region and version marks, dated snapshots stripped one at a time), and the one canonical name every page groups
a call by, so `gpt-4o-mini` (what a failed call asked for) and `gpt-4o-mini-2024-07-18` (what a successful one
was answered by) are one model. Pure functions, no database.
"""

from __future__ import annotations

import re

# Bedrock cross-region inference profiles: us.anthropic.claude-…, global.anthropic.claude-…
BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|au|jp|ca|global|us-gov)\.")
BEDROCK_VERSION = re.compile(r"(?:-v\d+)?:\d+$")
BEDROCK_VENDOR = re.compile(
    r"^(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer|moonshot|moonshotai|google)\."
)
# Snapshot suffixes, stripped one at a time so every intermediate name is a candidate.
_SNAPSHOT_SUFFIXES = (
    re.compile(r"-latest$"),
    re.compile(r"@\d{8}$"),  # vertex: claude-3-5-sonnet@20240620
    re.compile(r"@\d{3}$"),  # vertex: text-embedding-004@001
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # openai: gpt-4o-mini-2024-07-18
    re.compile(r"-\d{8}$"),  # anthropic: claude-sonnet-4-5-20250929
    re.compile(r"(?<=-preview)-\d{2}-\d{2}$"),  # gemini: gemini-2.5-flash-preview-05-20
    re.compile(r"(?<=-preview)-\d{2}-\d{4}$"),  # gemini: gemini-2.5-flash-preview-09-2025
    re.compile(r"(?<=-exp)-\d{2}-\d{2}$"),  # gemini: gemini-2.0-flash-thinking-exp-01-21
    re.compile(r"-(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])$"),  # openai: gpt-4-0613
    re.compile(r"-00\d$"),  # gemini: gemini-1.5-pro-002
)


def normalize_model_name(name: str) -> list[str]:
    """Names to look a reported model up by, most specific first, lower-cased.

    `openai/gpt-4o-mini-2024-07-18` → [`openai/gpt-4o-mini-2024-07-18`, `gpt-4o-mini-2024-07-18`,
    `gpt-4o-mini`]: the exact (dated) name wins when the catalog has it. Fine-tuned OpenAI models
    (`ft:base:org::id`) only resolve to fine-tune prices, never to the cheaper base model.
    """
    current = name.strip().lower()
    if not current:
        return []
    if current.startswith("ft:"):
        base = current.split(":")[1]
        return unique_names([current] + [f"ft:{candidate}" for candidate in normalize_model_name(base)])
    candidates = [current]
    while "/" in current:
        current = current.split("/", 1)[1]
        candidates.append(current)
    for pattern in (BEDROCK_REGION, BEDROCK_VERSION, BEDROCK_VENDOR):
        current = pattern.sub("", current)
        candidates.append(current)
    stripped = True
    while stripped:
        stripped = False
        for pattern in _SNAPSHOT_SUFFIXES:
            shorter = pattern.sub("", current)
            if shorter != current and shorter:
                current = shorter
                candidates.append(current)
                stripped = True
                break
    return unique_names(candidates)


def unique_names(names: list[str]) -> list[str]:
    return [name for name in dict.fromkeys(names) if name]


def canonical_model(response_model: str, request_model: str = "") -> str:
    """The one name a call is grouped by: its model without vendor path, region, version or snapshot date.

    `gpt-4o-mini-2024-07-18` and `gpt-4o-mini` → `gpt-4o-mini`; `us.anthropic.claude-3-5-sonnet-20241022-v2:0` →
    `claude-3-5-sonnet`; `openai/gpt-4o` → `gpt-4o`. A fine-tuned model keeps its whole name: it is priced apart.
    The answering model wins; a call that failed before an answer is named by the model it asked for.
    """
    names = normalize_model_name(response_model) or normalize_model_name(request_model)
    if not names:
        return ""
    return names[0] if names[0].startswith("ft:") else names[-1]
