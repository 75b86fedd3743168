"""HTTP client for the MemStore registry (resolve and blob downloads).

The transport is injectable: unit tests pass ``httpx.MockTransport``,
integration tests a real server. Field names of the wire format live in
:mod:`runtime._wire`; this module only does HTTP.

Not here: verification, caching or installing (see :mod:`runtime.install`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urljoin

import httpx

from protocol import PackRef

from ._wire import Resolution, parse_error, parse_resolution
from .errors import RegistryError

__all__ = ["RegistryClient"]

USER_AGENT = "memos/0.1"


class RegistryClient:
    """Talks to one registry. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        headers = {"User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=True,
        )
        self._token = token

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def resolve(self, ref: PackRef) -> Resolution:
        """``GET /api/v1/resolve/<ns>/<name>?spec=...`` -> a validated Resolution."""
        namespace, name = ref.name.split("/", 1)
        path = f"api/v1/resolve/{quote(namespace, safe='')}/{quote(name, safe='')}"
        params = {} if ref.spec.text == "*" else {"spec": ref.spec.text}
        try:
            response = self._http.get(path, params=params)
        except httpx.TransportError as exc:
            raise RegistryError(
                f"cannot reach the registry at {self.base_url}: {exc}", code="network.unreachable"
            ) from exc
        if response.status_code != 200:
            raise parse_error(response.status_code, response.content)
        try:
            body = response.json()
        except ValueError as exc:
            raise RegistryError("the registry's answer is not JSON", code="registry.bad_response") from exc
        return parse_resolution(body)

    def absolute(self, url: str) -> str:
        return urljoin(self.base_url, url)

    @contextmanager
    def stream(self, url: str, *, offset: int = 0) -> Iterator[httpx.Response]:
        """Open a download, asking for bytes from ``offset`` on (HTTP Range).

        The caller checks ``response.status_code`` (206 honours the range,
        200 sends everything). Error statuses raise RegistryError. The
        ``Authorization`` header is sent only to the registry's own host.
        """
        target = self.absolute(url)
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        same_host = httpx.URL(target).host == httpx.URL(self.base_url).host
        request = self._http.build_request("GET", target, headers=headers)
        if not same_host:
            request.headers.pop("Authorization", None)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise RegistryError(f"download failed: {exc}", code="network.download_failed") from exc
        try:
            if response.status_code not in (200, 206, 416):
                response.read()
                raise parse_error(response.status_code, response.content)
            yield response
        finally:
            response.close()
