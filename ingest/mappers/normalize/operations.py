"""Operation names (chat, embeddings, responses, ...) and the ones that are not model calls (agent, tool)."""

from __future__ import annotations

from ingest.mappers.normalize.values import label
from ingest.records import AttrValue

_OPERATIONS = {
    "chat": "chat",
    "chat_completions": "chat",
    "chat.completions": "chat",
    "text_completion": "text_completion",
    "completion": "text_completion",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "embedding": "embeddings",
    "embed": "embeddings",
    "responses": "responses",
    "response": "responses",
    "generate_content": "generate_content",
    "rerank": "rerank",
    # Semantic Kernel (.NET and Python)
    "chat.streaming_completions": "chat",
    "text.completions": "text_completion",
    "text.streaming_completions": "text_completion",
    "text_completions": "text_completion",
    # LiteLLM call types
    "acompletion": "chat",
    "atext_completion": "text_completion",
    "aembedding": "embeddings",
}
# Operation names that only streamed calls carry.
STREAMING_OPERATIONS = frozenset({"chat.streaming_completions", "text.streaming_completions"})
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "embeddings", "responses", "generate_content", "rerank"})
NON_CALL_OPERATIONS = frozenset(
    {
        "invoke_agent",
        "create_agent",
        "execute_tool",
        "workflow",
        "task",
        "agent",
        "tool",
        "retrieval",
        "vectordb",
        "framework",
    }
)


def operation_name(value: AttrValue) -> str:
    if type(value) is str:
        known = _OPERATIONS.get(value)
        if known is not None:
            return known
    raw = label(value).lower()
    return _OPERATIONS.get(raw, raw)
