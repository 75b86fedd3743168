"""The registry's own exception tree; protocol errors (``protocol.MIPError``) pass through.

Every error carries a stable ``code`` (``registry.*``; ``commerce.*`` in its
branch), an HTTP status and a ``detail`` dict. Services raise these; the one
DRF exception handler (:mod:`memstore.api.errors`) turns them, protocol errors
and DRF's own errors into ``{"error": {"code", "message", "detail"}}``.
Not here: HTTP glue.

Tree::

    RegistryError                     registry.*          500
    ├── InvalidRequestError           registry.invalid_request 400 (and others)
    ├── NotAuthenticatedError         registry.not_authenticated 401
    ├── ForbiddenError                registry.forbidden  403 (entitlement_required ...)
    ├── NotFoundError                 registry.not_found  404 (namespace_not_found ...)
    ├── GoneError                     registry.version_deleted 410
    ├── ConflictError                 registry.conflict   409 (version_exists ...)
    ├── TooLargeError                 registry.too_large  413
    ├── TooManyRequestsError          registry.too_many_requests 429 (too_many_uploads)
    ├── StorageUnavailableError       registry.storage_unavailable 503
    └── CommerceError                 commerce.*          (memstore.commerce.errors)

One root for the whole registry: commerce's errors are a branch of this tree
(with ``commerce.*`` codes), so a caller that catches ``RegistryError`` catches
every coded error a service raises, and the handler needs no second case.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "ForbiddenError",
    "GoneError",
    "InvalidRequestError",
    "NotAuthenticatedError",
    "NotFoundError",
    "RegistryError",
    "StorageFullError",
    "StorageUnavailableError",
    "TooLargeError",
    "TooManyRequestsError",
]


class RegistryError(Exception):
    code = "registry.internal"
    status = 500

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


class InvalidRequestError(RegistryError):
    code = "registry.invalid_request"
    status = 400


class NotAuthenticatedError(RegistryError):
    code = "registry.not_authenticated"
    status = 401


class ForbiddenError(RegistryError):
    code = "registry.forbidden"
    status = 403


class NotFoundError(RegistryError):
    code = "registry.not_found"
    status = 404


class GoneError(RegistryError):
    code = "registry.version_deleted"
    status = 410


class ConflictError(RegistryError):
    code = "registry.conflict"
    status = 409


class TooLargeError(RegistryError):
    code = "registry.too_large"
    status = 413


class TooManyRequestsError(RegistryError):
    code = "registry.too_many_requests"
    status = 429


class StorageUnavailableError(RegistryError):
    code = "registry.storage_unavailable"
    status = 503


class StorageFullError(StorageUnavailableError):
    """The blob volume has no space left: nothing was stored, the publish may be retried."""

    code = "registry.storage_full"
    status = 507
