"""A checked pack's blobs as ranges of files (runtime.pack_blobs, protocol.blob_locations).

What is sent must be exactly each blob's bytes: raw MIP 2 members straight from the
pack file, zstd text members decompressed, MIP 1 payloads extracted; a pack that
does not read offers nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from protocol import ArchiveError, SigningKey, blob_locations, manifest_blobs, read_pack
from runtime.pack_blobs import checked_pack

from .helpers import build_pack, lora_cube

KEY = SigningKey.from_seed(b"p" * 32)
# Long, repetitive text: zstd pays, so the MIP 2 writer stores it as a .zst member.
MEMORIES = [f"Memory {i}: the deploy window is Tuesday at ten, ask the on-call first." * 4
            for i in range(300)]  # fmt: skip


def _pack(tmp: Path, mip_version: str | None) -> Path:
    return build_pack(
        tmp, name="acme/mixed", keys=[KEY], memories=MEMORIES, mip_version=mip_version,
        extra_cubes=[lora_cube("adapter", floats=50_000, seed=3)],
    )  # fmt: skip


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("mip_version", ["2.0", None])
def test_every_blob_is_offered_as_exactly_its_bytes(
    tmp_path: Path, mip_version: str | None
) -> None:
    path = _pack(tmp_path, mip_version)
    entries = manifest_blobs(read_pack(path).manifest)
    with checked_pack(path) as checked:
        assert set(checked.blobs) == {e.sha256 for e in entries}
        for entry in entries:
            blob = checked.blobs[entry.sha256]
            data = b"".join(blob.chunks())
            assert (len(data), _sha(data)) == (entry.size, entry.sha256)
            middle = b"".join(blob.chunks(10, 100))  # a range, as a resumed upload asks
            assert middle == data[10:110]
        work = {b.path.parent for b in checked.blobs.values() if b.path != path}
    assert all(not folder.exists() for folder in work)  # temporary files are gone


def test_raw_mip2_blobs_are_ranges_of_the_pack_file_itself(tmp_path: Path) -> None:
    path = _pack(tmp_path, "2.0")
    where = blob_locations(path)
    assert any(loc.compressed for loc in where.values())  # the text went in as zstd
    with checked_pack(path) as checked:
        raw = [d for d, loc in where.items() if not loc.compressed]
        assert raw and all(checked.blobs[d].path == path for d in raw)
        assert all(checked.blobs[d].offset == where[d].offset for d in raw)


def test_a_mip1_pack_has_no_blob_offsets(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as err:
        blob_locations(_pack(tmp_path, None))
    assert err.value.code == "archive.corrupt"


def test_a_pack_that_does_not_read_offers_nothing(tmp_path: Path) -> None:
    path = _pack(tmp_path, "2.0")
    data = bytearray(path.read_bytes())
    where = next(loc for loc in blob_locations(path).values() if not loc.compressed)
    data[where.offset + 5] ^= 0xFF  # one flipped byte inside a tensor blob
    path.write_bytes(bytes(data))
    with pytest.raises(Exception) as err, checked_pack(path):
        pass
    assert getattr(err.value, "code", "").startswith(("integrity.", "payload."))
