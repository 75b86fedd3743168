"""The runtime's one exception tree. Every error carries a stable ``code``.

Tree::

    MemosError                      memos.error
    ├── RegistryError               registry.* (codes passed through from the server),
    │                               http.<status>, network.*
    ├── InstallError                install.*   (resolve, download, trust, lockfile)
    ├── TrustError                  trust.*     (the registry's TUF index: pin, metadata,
    │                                            targets, namespace keys; runtime.trust_index)
    ├── CacheError                  cache.*
    ├── EngineError                 engine.*
    │   ├── NotFoundError           engine.not_found
    │   ├── AccessDeniedError       access.denied
    │   └── LifecycleError          lifecycle.* (illegal transitions, guards)
    ├── InteropError                interop.*   (memos import/export: other memory systems'
    │                                            formats, refused with a stable code)
    └── ModelError                  model.*     (runtime.models.errors: loading, KV caches,
                                                 adapters; torch-free to import)

Errors from the protocol library (``protocol.MIPError``: ``integrity.*``,
``signature.*``, ``archive.*`` ...) are raised unchanged; they are a separate
tree with the same ``code``/``message``/``detail`` shape. The CLI's error table
(``runtime/cli/errors.py``) maps codes to hints.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessDeniedError",
    "CacheError",
    "EngineError",
    "InstallError",
    "InteropError",
    "LifecycleError",
    "MemosError",
    "NotFoundError",
    "RegistryError",
    "TrustError",
]


class MemosError(Exception):
    """Root of every error the runtime raises itself."""

    code: str = "memos.error"

    def __init__(self, message: str, *, code: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.detail: dict[str, Any] = detail

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class RegistryError(MemosError):
    """The registry answered with an error, or could not be reached."""

    code = "registry.error"

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, **detail: Any
    ) -> None:
        super().__init__(message, code=code, **detail)
        self.status = status


class InstallError(MemosError):
    code = "install.error"


class TrustError(MemosError):
    """The registry's TUF index refused what the registry answered (nothing is installed)."""

    code = "trust.error"


class InteropError(MemosError):
    """Another memory system's export could not be imported, or a pack exported to it."""

    code = "interop.error"


class CacheError(MemosError):
    code = "cache.error"


class EngineError(MemosError):
    code = "engine.error"


class NotFoundError(EngineError):
    code = "engine.not_found"


class AccessDeniedError(EngineError):
    code = "access.denied"


class LifecycleError(EngineError):
    code = "lifecycle.illegal_transition"
