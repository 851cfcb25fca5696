"""The SDK's optional C module (`_speedups`, built by pip when a C compiler is at hand): the same
bytes as the Python code it stands in for, faster. None when it is not built, or when
OBSERVATORY_SDK_PURE_PYTHON=1 asks for the Python code."""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("OBSERVATORY_SDK_PURE_PYTHON", "").strip().lower() in ("1", "true", "yes"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups


speedups = _load()
