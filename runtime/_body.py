"""Blob bodies received straight into one reused buffer (``http.client`` ``readinto``).

Why not httpx for these bytes: its HTTP/1.1 parser (h11) appends every
received block to a buffer of its own and slices a new ``bytes`` object out
of it per chunk, so each byte is copied twice and allocated once before our
code sees it. On loopback a 119 MB blob came through ``httpx`` at 284 MB/s
and through ``http.client``'s ``readinto`` at 1.1 GB/s, faster than ``curl``
to ``/dev/null`` (``bench/RESULTS.md``, MIP 2 section). A download is one
plain GET of a content-addressed blob, checked by its sha256 afterwards,
so the standard library's client is enough for it; every other request
(resolve, publish, tokens) stays on httpx.

The same rules as :meth:`runtime.client.RegistryClient.stream`: the one TLS
context of the process (certificates verified, host names checked),
``Accept-Encoding: identity`` (a compressed body would not hash right),
redirects followed for the GET (the S3 backend answers 302 to a presigned
URL), and the ``Authorization`` header sent only to the token's own origin.
Where those rules cannot be kept the caller uses httpx instead
(:func:`usable_for`): an injected transport (tests), a proxy named by the
environment, a scheme other than http/https.

The chunks yielded by :meth:`Body.chunks` are views of one buffer: each is
valid until the next one is asked for (the download loop writes and hashes
it before that).
"""

from __future__ import annotations

import http.client
import ssl
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

from ._wire import parse_error
from .credentials import Origin, origin_of
from .errors import RegistryError

__all__ = ["BUFFER_BYTES", "Body", "open_body", "usable_for"]

#: One receive buffer per download: large enough that a read call moves a lot of
#: bytes, small enough to stay in the CPU's caches between receive, write and hash.
BUFFER_BYTES = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_ERROR_BODY_LIMIT = 64 * 1024


def usable_for(url: str) -> bool:
    """Whether ``url`` can be fetched here with the same rules as httpx (no proxy applies)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass(parts.hostname))  # no_proxy / NO_PROXY


class Body:
    """An open response: its status, headers and the body as views of a reused buffer."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._connection, self._response = connection, response
        self.status_code = response.status

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers, names case-insensitive (``email.message.Message`` semantics)."""
        return self._response.headers  # type: ignore[return-value]

    def chunks(self) -> Iterator[memoryview]:
        """The body, block by block; a connection that ends early raises ``network.*``.

        With a Content-Length (every blob server sends one), each block is
        what one receive call brought, at most the buffer: on a slow link the
        bytes reach the partial file (and the progress bar) as they come,
        rather than once a whole buffer has filled.
        """
        view = memoryview(bytearray(BUFFER_BYTES))
        response, left = self._response, self._response.length
        try:
            if left is None:  # chunked or close-delimited: http.client decodes it
                while count := response.readinto(view):
                    yield view[:count]
                return
            while left:
                count = response.fp.readinto1(view[: min(len(view), left)])
                if not count:
                    raise RegistryError(
                        f"download interrupted: the connection closed {left} bytes early",
                        code="network.download_interrupted",
                    )
                left -= count
                yield view[:count]
        except (OSError, http.client.HTTPException) as exc:
            raise RegistryError(
                f"download interrupted: {exc}", code="network.download_interrupted"
            ) from exc

    def close(self) -> None:
        self._connection.close()


def _connect(
    url: str, tls: ssl.SSLContext, timeout: float
) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return connection, target


@contextmanager
def open_body(
    url: str,
    *,
    headers: Mapping[str, str],
    authorization: str | None,
    token_origin: Origin | None,
    tls: ssl.SSLContext,
    timeout: float,
) -> Iterator[Body]:
    """GET ``url`` with ``headers``; yield the answer once it is 200, 206 or 416.

    ``authorization`` (a header value) goes only to ``token_origin``; a
    redirect elsewhere drops it. Error statuses raise the registry's error
    (:func:`runtime._wire.parse_error`); a connection that fails raises
    ``network.download_failed``.
    """
    for _ in range(_MAX_REDIRECTS + 1):
        send = dict(headers)
        if authorization and origin_of(url) == token_origin:
            send["Authorization"] = authorization
        connection, target = _connect(url, tls, timeout)
        try:
            connection.request("GET", target, headers=send)
            response = connection.getresponse()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            connection.close()
            raise RegistryError(f"download failed: {exc}", code="network.download_failed") from exc
        location = response.getheader("Location")
        if response.status in _REDIRECTS and location:
            connection.close()
            url = urljoin(url, location)
            continue
        body = Body(connection, response)
        try:
            if response.status not in (200, 206, 416):
                raise parse_error(response.status, response.read(_ERROR_BODY_LIMIT))
            yield body
        finally:
            body.close()
        return
    raise RegistryError(
        f"more than {_MAX_REDIRECTS} redirects downloading {url}", code="network.download_failed"
    )
