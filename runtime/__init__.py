"""memos: the MemOS runtime — install packs, local memory engine, SDK and CLI.

``from runtime import MemOS`` is the agent-facing entry point. Importing this
package is light: nothing below is imported until first used (no torch, no
numpy, no network at import time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine.lifecycle import Event, State
    from .engine.scheduler import Budget, Plan
    from .engine.types import Filters, Memory, SearchHit
    from .errors import MemosError
    from .sdk import MemOS

__all__ = [
    "Budget",
    "Event",
    "Filters",
    "MemOS",
    "Memory",
    "MemosError",
    "Plan",
    "SearchHit",
    "State",
]

_LAZY = {
    "MemOS": ".sdk",
    "Budget": ".engine.scheduler",
    "Plan": ".engine.scheduler",
    "Filters": ".engine.types",
    "Memory": ".engine.types",
    "SearchHit": ".engine.types",
    "Event": ".engine.lifecycle",
    "State": ".engine.lifecycle",
    "MemosError": ".errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
