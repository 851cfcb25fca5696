"""Observatory SDK: wraps OpenAI and Anthropic clients and exports one OpenTelemetry GenAI span
per model call to Observatory, off the app's hot path. Start with `init()` and `wrap(client)`."""

from .api import flush, init, instrument, record_cache_hit, shutdown, stats, uninstrument, wrap
from .attribution import attribute, copy_context, current_attribution
from .feedback import feedback
from .version import __version__

__all__ = [
    "__version__",
    "attribute",
    "copy_context",
    "current_attribution",
    "feedback",
    "flush",
    "init",
    "instrument",
    "record_cache_hit",
    "shutdown",
    "stats",
    "uninstrument",
    "wrap",
]
