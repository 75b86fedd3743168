"""Names, digests and tags followed by a newline are refused, not accepted as the same thing.

Python's ``$`` also matches before a final newline, so ``^[0-9a-f]{64}$``
accepts a digest with ``"\\n"`` after it: a second spelling of one name (a
cache file name with a newline in it, a lockfile that says something else
than it shows). Our validating patterns end in ``\\Z`` instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import ManifestError
from protocol.version import parse_version
from runtime.cache import BlobCache
from runtime.errors import CacheError
from runtime.oci.errors import OCIError
from runtime.oci.reference import parse_reference

DIGEST = "ab" * 32


def test_a_cache_digest_with_a_newline_is_refused(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    cache.blob_path(DIGEST)  # the plain digest is fine
    with pytest.raises(CacheError) as info:
        cache.blob_path(DIGEST + "\n")
    assert info.value.code == "cache.bad_digest"


def test_a_mip_version_with_a_newline_is_refused() -> None:
    assert parse_version("1.0") == (1, 0)
    with pytest.raises(ManifestError):
        parse_version("1.0\n")


@pytest.mark.parametrize(
    "text",
    [
        "oci://127.0.0.1:5000/ns/pack:1.0.0\n",
        "oci://127.0.0.1:5000\n/ns/pack:1.0.0",
        "oci://127.0.0.1:5000/ns/pack\n:1.0.0",
        f"oci://127.0.0.1:5000/ns/pack@sha256:{DIGEST}\n",
    ],
)
def test_an_oci_reference_with_a_newline_is_refused(text: str) -> None:
    parse_reference(text.replace("\n", ""))
    with pytest.raises(OCIError):
        parse_reference(text)
