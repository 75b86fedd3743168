"""Which origin a registry token may be sent to: exactly the one it was issued for.

An origin is (scheme, host, port), with the scheme's default port filled in, as browsers
compare them (RFC 6454). A token read from ``$MEMOS_HOME/config.json`` (or
``MEMOS_TOKEN``) is a :class:`BoundToken` carrying the registry it was looked up for;
:class:`runtime.client.RegistryClient` sends it only to that origin, so a blob URL on
another port of the same host (an S3/MinIO presigned URL) or a registry named by a
``memos.lock`` the user never logged in to never receives it.

Not here: where tokens are stored (:mod:`runtime.config`), HTTP (:mod:`runtime.client`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["BoundToken", "Origin", "origin_of", "token_origin"]

Origin = tuple[str, str, int]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of ``url``, lower-cased, the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


class BoundToken(str):
    """A token (the text itself) and the registry URL it was issued for (``registry``)."""

    registry: str

    def __new__(cls, token: str, registry: str) -> BoundToken:
        self = super().__new__(cls, token)
        self.registry = registry
        return self


def token_origin(token: str, default: str) -> Origin:
    """The origin ``token`` may go to: its own registry's when bound, else ``default``'s."""
    return origin_of(token.registry if isinstance(token, BoundToken) else default)
