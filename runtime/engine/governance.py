"""Who may read and who may change a memory: one rule, one refusal, always audited.

A memory's access policy (:class:`protocol.AccessPolicy`) has one list of
principals. Whoever may read a memory may change it (public: everyone); a
restricted or private memory is read and changed only by the principals it
lists, never anonymously. Every refusal is written to the audit log as
``access_denied`` with what was attempted, before ``access.denied`` is raised.

Not here: the audit log itself (:mod:`runtime.engine.store`), filtering search
results (:func:`runtime.engine.retrieval.visible`).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import AccessDeniedError
from .types import Memory

__all__ = ["require_access"]

Audit = Callable[..., None]


def require_access(
    audit: Audit, memory: Memory, principal: str | None, *, attempted: str, write: bool
) -> None:
    """Return if ``principal`` may read (``write``: change) ``memory``; else audit and raise."""
    if memory.access.allows(principal):
        return
    audit("access_denied", actor=principal, target=memory.id, attempted=attempted)
    verb = "change" if write else "read"
    raise AccessDeniedError(
        f"{principal or 'anonymous'} may not {verb} {memory.id} ({memory.access.visibility})",
        memory_id=memory.id,
    )
