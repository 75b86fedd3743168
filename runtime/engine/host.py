"""What the engine's policies use of the engine, as a typing.Protocol.

Maintenance (:mod:`runtime.engine.maintenance`) and dynamic transformation
(:mod:`runtime.engine.transform`) act on an engine, and the engine runs
maintenance when it opens. So that the modules do not import each other in
a circle, the policies take a :class:`PolicyHost`: the few attributes and
methods they call, which :class:`runtime.engine.engine.Engine` has.

Not here: any implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from .interfaces import Clock
from .lifecycle import Event
from .store import Store
from .types import Memory
from .vectors import VectorFile

__all__ = ["PolicyHost"]


class PolicyHost(Protocol):
    """The engine as the policies see it."""

    home: Path
    store: Store
    clock: Clock

    @property
    def vectors(self) -> VectorFile: ...

    def audit(
        self, action: str, *, actor: str | None, target: str | None = None, **detail: Any
    ) -> None: ...

    def require(self, memory_id: str) -> tuple[Memory, int, int | None]: ...

    def update(
        self,
        memory_id: str,
        *,
        actor: str | None = None,
        system: bool = False,
        tags: Sequence[str] | None = None,
    ) -> Memory: ...

    def transition(
        self,
        memory_id: str,
        event: Event | str,
        *,
        actor: str | None = None,
        system: bool = False,
        merged_into: str | None = None,
        reason: str = "",
    ) -> Memory: ...

    def compact_vectors(self) -> dict[str, int]: ...

    def flush_usage(self) -> None:
        """Write queued uses, before a policy reads use counters."""
        ...
