"""The one exception tree of the Memory Interchange Protocol library.

Every error the protocol library raises derives from :class:`MIPError` and
carries a stable, machine-readable ``code`` (for example
``archive.path_traversal``). Codes are part of MIP 1.0 (see SPEC.md, "Error
codes"): the registry returns them in its JSON errors, the runtime's CLI maps
them to human messages, and the conformance vectors name them as expected
outcomes. Messages are for people and may change; codes never do.

Tree::

    MIPError
    ├── ManifestError                 manifest.*   (schema, fields, JSON)
    │   └── UnsupportedVersionError   manifest.unsupported_version
    ├── ArchiveError                  archive.*    (container, members, limits)
    │   └── LimitExceededError        archive.limit.*
    ├── IntegrityError                integrity.*  (digest and size binding)
    ├── PayloadError                  payload.*    (content vs media type)
    └── SignatureError                signature.*  (keys and signatures)

This module is not for HTTP status mapping or user-facing hints: those live at
the edges (registry exception handler, CLI error table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ArchiveError",
    "IntegrityError",
    "LimitExceededError",
    "MIPError",
    "ManifestError",
    "PayloadError",
    "SignatureError",
    "UnsupportedVersionError",
    "Violation",
]


@dataclass(frozen=True)
class Violation:
    """One schema violation: where (RFC 6901 JSON pointer) and what."""

    pointer: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class MIPError(Exception):
    """Root of every error raised by the protocol library."""

    code: str = "mip.error"

    def __init__(self, message: str, *, code: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.detail: dict[str, Any] = detail

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The error as the JSON object MIP tools exchange: code, message, detail."""
        detail = {
            key: ([v.to_dict() for v in value] if key == "violations" else value)
            for key, value in self.detail.items()
        }
        return {"code": self.code, "message": self.message, "detail": detail}


class ManifestError(MIPError):
    """The manifest is not valid MIP: bad JSON, schema violations, bad fields."""

    code = "manifest.invalid"

    @property
    def violations(self) -> list[Violation]:
        found = self.detail.get("violations", [])
        return list(found)


class UnsupportedVersionError(ManifestError):
    """The manifest declares a MIP major version this reader cannot read."""

    code = "manifest.unsupported_version"


class ArchiveError(MIPError):
    """The pack container is malformed or unsafe to read."""

    code = "archive.invalid"


class LimitExceededError(ArchiveError):
    """A hard reading limit was exceeded (size, count, compression ratio)."""

    code = "archive.limit"


class IntegrityError(MIPError):
    """A payload does not match the digest or size the manifest binds it to."""

    code = "integrity.mismatch"


class PayloadError(MIPError):
    """A payload's content is not what its media type claims."""

    code = "payload.invalid"


class SignatureError(MIPError):
    """A key or signature is malformed, invalid, untrusted or missing."""

    code = "signature.invalid"
