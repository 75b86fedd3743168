"""Where a client reads a registry's log: the HTTP API, or a fake in tests.

Answers are returned as parsed JSON; :mod:`.verifier` checks every field it
uses. Not here: any verification.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..client import RegistryClient

__all__ = ["HttpLog", "LogSource"]


class LogSource(Protocol):
    def tree_head(self) -> Any: ...

    def entries(self, start: int, end: int) -> Any: ...

    def inclusion(self, *, size: int, manifest_sha256: str) -> Any: ...

    def consistency(self, first: int, second: int) -> Any: ...


class HttpLog:
    """``/api/v1/log/...`` of one registry, through its :class:`RegistryClient`."""

    def __init__(self, client: RegistryClient) -> None:
        self._client = client

    def _get(self, path: str, **params: Any) -> Any:
        # The client's one request path: errors become RegistryError with the server's code.
        return self._client.request_json("GET", f"api/v1/log/{path}", params=params)

    def tree_head(self) -> Any:
        return self._get("tree-head")

    def entries(self, start: int, end: int) -> Any:
        return self._get("entries", start=start, end=end)

    def inclusion(self, *, size: int, manifest_sha256: str) -> Any:
        return self._get("proof/inclusion", size=size, manifest_sha256=manifest_sha256)

    def consistency(self, first: int, second: int) -> Any:
        return self._get("proof/consistency", first=first, second=second)
