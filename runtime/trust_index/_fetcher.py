"""python-tuf's fetcher over our one HTTP client (no urllib3 code of python-tuf's own).

Each metadata file is fetched with :meth:`runtime.client.RegistryClient.stream`
(same TLS context, transport and proxies as every other request); ngclient
caps the length. A file that trickles in slower than ``deadline_s`` in all
is cut off (``SlowRetrievalError``): a registry or a network cannot hold an
install forever one byte at a time.

One round trip per refresh, not two: the TUF client workflow asks for
``<N+1>.root.json`` (almost always a 404) and only then for ``timestamp.json``.
When ngclient asks for the first root of a refresh, :class:`RegistryFetcher`
also starts ``timestamp.json`` on another connection of the same client, and
hands those bytes over when ngclient asks for it next. The workflow's order
and every check are ngclient's, unchanged: the prefetched bytes go through the
same length cap (at most ``timestamp_cap + 1`` bytes are read, so an endless
body is still "too long"), the same deadline and the same errors, and ngclient
verifies them against the root it ends up trusting (a new root found by the
probe included). Bytes not asked for in that refresh are dropped.

Not here: what is fetched or how it is verified (:mod:`.index`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

from tuf.api import exceptions
from tuf.ngclient import UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface

from ..client import RegistryClient
from ..errors import RegistryError

__all__ = ["RegistryFetcher"]

DEFAULT_DEADLINE_S = 30.0
_ROOT = re.compile(r"/\d+\.root\.json$")


class RegistryFetcher(FetcherInterface):
    def __init__(
        self, client: RegistryClient, *, deadline_s: float = DEFAULT_DEADLINE_S,
        timestamp_cap: int = UpdaterConfig().timestamp_max_length,
    ) -> None:  # fmt: skip
        self.client = client
        self.deadline_s = deadline_s
        self.timestamp_cap = timestamp_cap
        #: metadata requests made (the bench counts them); a prefetch counts as one
        self.requests = 0
        self._prefetch: tuple[str, Future[bytes]] | None = None

    def _fetch(self, url: str) -> Iterator[bytes]:
        prefetched = self._take(url)
        if prefetched is not None:
            yield prefetched.result()  # its exception, if it failed, as _fetch raises it
            return
        if _ROOT.search(url) and self._prefetch is None:
            self._start(url.rsplit("/", 1)[0] + "/timestamp.json")
        yield from self._get(url)

    def refresh_done(self) -> None:
        """Drop a prefetch ngclient did not ask for (the refresh failed before it)."""
        self._prefetch = None

    def _take(self, url: str) -> Future[bytes] | None:
        if self._prefetch is None or self._prefetch[0] != url:
            return None
        future = self._prefetch[1]
        self._prefetch = None
        return future

    def _start(self, url: str) -> None:
        future: Future[bytes] = Future()

        def run() -> None:
            try:
                data = bytearray()
                for chunk in self._get(url):
                    data += chunk
                    if len(data) > self.timestamp_cap:
                        break  # ngclient refuses it as too long, having read as much
                future.set_result(bytes(data))
            except BaseException as exc:  # handed to ngclient as _fetch would raise it
                future.set_exception(exc)

        self._prefetch = (url, future)
        threading.Thread(target=run, name="tuf-prefetch", daemon=True).start()

    def _get(self, url: str) -> Iterator[bytes]:
        start = time.monotonic()
        self.requests += 1
        try:
            with self.client.stream(url) as response:
                if response.status_code != 200:
                    raise exceptions.DownloadHTTPError(
                        f"{url}: HTTP {response.status_code}", response.status_code
                    )
                for chunk in response.iter_bytes():
                    if time.monotonic() - start > self.deadline_s:
                        raise exceptions.SlowRetrievalError(f"{url} took over {self.deadline_s}s")
                    yield chunk
        except RegistryError as exc:
            if exc.status is not None:
                raise exceptions.DownloadHTTPError(str(exc), exc.status) from exc
            raise exceptions.DownloadError(str(exc)) from exc
