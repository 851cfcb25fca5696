"""The provider's response id (chatcmpl-…, msg_…, resp_…): where instrumentations put it, and what its shape says
about who served the call."""

from __future__ import annotations

from typing import Any

from ingest.mappers.normalize.values import label

RESPONSE_ID_KEY = "gen_ai.response.id"

# Shapes only one provider uses. `chatcmpl-` is left out: every OpenAI-compatible server (vLLM, Ollama, LiteLLM,
# Together …) answers with it, so it says nothing about who served the call.
_PREFIX_PROVIDERS = (
    ("msg_bdrk_", "aws.bedrock"),  # Anthropic models on Bedrock
    ("msg_vrtx_", "gcp.vertex_ai"),  # Anthropic models on Vertex AI
    ("msg_", "anthropic"),
    ("resp_", "openai"),  # the Responses API
)


def provider_from_response_id(response_id: str) -> str:
    """The provider a response id's shape implies, or ''."""
    for prefix, provider in _PREFIX_PROVIDERS:
        if response_id.startswith(prefix):
            return provider
    return ""


def response_id_in(obj: dict[str, Any]) -> str:
    """The provider's response id inside a response object recorded as content or outputs.

    A provider response (OpenAI chat / Responses, Anthropic message) has it beside its `model`; a LangChain
    LLMResult has it in `llm_output` or in the first generation's `message.kwargs.response_metadata`. Other ids
    (LangChain run ids, MLflow request ids) are not response ids and are not taken.
    """
    if "model" in obj:
        return label(obj.get("id"))
    llm_output = obj.get("llm_output")
    if type(llm_output) is dict and (found := label(llm_output.get("id"))):
        return found
    generations = obj.get("generations")
    if type(generations) is list and generations and type(generations[0]) is list and generations[0]:
        message = generations[0][0].get("message") if type(generations[0][0]) is dict else None
        if type(message) is dict:
            fields = message.get("kwargs") if type(message.get("kwargs")) is dict else message
            metadata = fields.get("response_metadata")
            if type(metadata) is dict:
                return label(metadata.get("id"))
    return ""
