"""python-tuf's fetcher over our one HTTP client (no urllib3 code of python-tuf's own).

Each metadata file is fetched with :meth:`runtime.client.RegistryClient.stream`
(same TLS context, transport and proxies as every other request); ngclient
caps the length. A file that trickles in slower than ``deadline_s`` in all
is cut off (``SlowRetrievalError``): a registry or a network cannot hold an
install forever one byte at a time.

Not here: what is fetched or how it is verified (:mod:`.index`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from ..client import RegistryClient
from ..errors import RegistryError

__all__ = ["RegistryFetcher"]

DEFAULT_DEADLINE_S = 30.0


class RegistryFetcher(FetcherInterface):
    def __init__(self, client: RegistryClient, *, deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        self.client = client
        self.deadline_s = deadline_s
        #: metadata round trips made (the bench counts them)
        self.requests = 0

    def _fetch(self, url: str) -> Iterator[bytes]:
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
