"""Provider names: the official gen_ai.provider.name vocabulary from what instrumentations write, or from
the model name when they write nothing (or a framework's name)."""

from __future__ import annotations

import re
from functools import lru_cache

from ingest.mappers.normalize.values import label
from ingest.records import AttrValue

_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure.ai.openai": "azure.ai.openai",
    "az.ai.openai": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azureopenai": "azure.ai.openai",
    "azure": "azure.ai.openai",
    "azure.ai.inference": "azure.ai.inference",
    "az.ai.inference": "azure.ai.inference",
    "azure_ai_inference": "azure.ai.inference",
    "aws.bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",  # Spring AI
    "aws": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "gcp.vertex_ai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "vertex": "gcp.vertex_ai",
    "google_vertexai": "gcp.vertex_ai",
    "google_vertex": "gcp.vertex_ai",  # Pydantic AI google-vertex
    "google.vertex": "gcp.vertex_ai",  # Vercel AI SDK google.vertex.chat
    "vertex.anthropic": "gcp.vertex_ai",  # Vercel AI SDK vertex.anthropic.messages
    "gcp.gemini": "gcp.gemini",
    "gemini": "gcp.gemini",
    "google_ai_studio": "gcp.gemini",
    "google.ai.studio": "gcp.gemini",
    "google_genai": "gcp.gemini",
    "google.generativeai": "gcp.gemini",
    "google.generative_ai": "gcp.gemini",  # Vercel AI SDK google.generative-ai
    "google_gla": "gcp.gemini",  # Pydantic AI google-gla
    "gcp.gen_ai": "gcp.gen_ai",
    "google": "gcp.gen_ai",
    "cohere": "cohere",
    "mistral_ai": "mistral_ai",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x_ai",
    "xai": "x_ai",
    "grok": "x_ai",
    "perplexity": "perplexity",
    "ibm.watsonx.ai": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
    "ibm_watsonx_ai": "ibm.watsonx.ai",
    "ollama": "ollama",
    "together": "together_ai",
    "togetherai": "together_ai",
    "together_ai": "together_ai",
    "fireworks": "fireworks_ai",
    "fireworks_ai": "fireworks_ai",
    "oci_genai": "oci",
}
# Values of gen_ai.system / gen_ai.provider.name that name a framework, not who served the call: the
# provider is then unknown (and taken from the model name).
_NOT_PROVIDERS = frozenset(
    {
        "langchain",  # OpenLLMetry LangChain (before vendor detection), OpenLIT
        "llama_index",
        "llamaindex",
        "haystack",
        "strands_agents",  # AWS Strands Agents
        "gcp.vertex.agent",  # Google ADK
        "spring_ai",  # Spring AI ChatClient (framework spans)
        "semantic_kernel",
        "crewai",
        "autogen",
        "ag2",
        "litellm",  # OpenLIT's LiteLLM wrapper
        "unknown",  # LiteLLM without custom_llm_provider
    }
)


def provider_name(value: AttrValue) -> str:
    """Provider in the official gen_ai.provider.name vocabulary (unknown names are kept, lowercased).

    Framework names (LangChain, Strands, ADK, ...) give '', and a dotted name that is not known as a whole
    is known by its head (`openai.chat` from the Vercel AI SDK is openai).
    """
    if type(value) is str:
        known = _PROVIDERS.get(value)
        if known is not None:
            return known
    raw = label(value).lower()
    if not raw:
        return ""
    known = _PROVIDERS.get(raw)
    if known is not None:
        return known
    return _provider_slow(raw)


@lru_cache(maxsize=1024)
def _provider_slow(raw: str) -> str:
    name = raw.replace(" ", "_").replace("-", "_")
    known = _PROVIDERS.get(name)
    if known is not None:
        return known
    if name in _NOT_PROVIDERS:
        return ""
    head = name
    while "." in head:
        head = head.rsplit(".", 1)[0]
        known = _PROVIDERS.get(head)
        if known is not None:
            return known
    return raw


_MODEL_PREFIXES = (
    ("gpt-", "openai"),
    ("chatgpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding", "openai"),
    ("davinci", "openai"),
    ("babbage", "openai"),
    ("claude", "anthropic"),
    ("gemini", "gcp.gemini"),
    ("mistral", "mistral_ai"),
    ("mixtral", "mistral_ai"),
    ("codestral", "mistral_ai"),
    ("command", "cohere"),
    ("embed-", "cohere"),
    ("grok", "x_ai"),
    ("deepseek", "deepseek"),
    ("sonar", "perplexity"),
)
# Bedrock model ids: `anthropic.claude-…-v1:0`, cross-region profiles `us.anthropic.claude-…`, ARNs.
_BEDROCK_MODEL = re.compile(
    r"^(?:arn:aws[\w-]*:bedrock:|(?:(?:us|eu|apac|au|jp|ca|global|us-gov)\.)?"
    r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer)\.[a-z])"
)


def provider_from_model(model: str) -> str:
    """The provider a model name implies: Bedrock ids, Vertex `claude-…@date`, `provider/model`, families."""
    lowered = model.lower()
    if not lowered:
        return ""
    if _BEDROCK_MODEL.match(lowered):
        return "aws.bedrock"
    if "/" in lowered:
        head, _, tail = lowered.partition("/")
        known = _PROVIDERS.get(head.replace("-", "_"))
        if known is not None:
            return known
        if head not in ("models", "publishers"):
            return ""  # an unknown host or organisation (`meta-llama/…`): the family says nothing of who served it
        return provider_from_model(tail)
    for prefix, provider in _MODEL_PREFIXES:
        if lowered.startswith(prefix):
            if provider == "anthropic" and "@" in lowered:
                return "gcp.vertex_ai"  # claude-3-5-sonnet@20240620 is Vertex AI's naming
            return provider
    return ""
