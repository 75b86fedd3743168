"""Cold KV caches: pages mapped behind load_kv, layer 0 first (runtime.models.kv_populate)."""

from __future__ import annotations

import gc
import mmap
import os
import sys
from pathlib import Path

import pytest

from runtime.models import kv, kv_populate, kv_read
from runtime.models.causal_lm import LoadedModel, greedy_generate
from runtime.models.kv import build_kv, load_kv
from runtime.models.kv_codec import MappedTensors
from runtime.models.kv_read import _read_header, layer_spans

PAGE = mmap.PAGESIZE
LINUX_5_14 = sys.platform.startswith("linux") and tuple(
    int(p) for p in os.uname().release.split("-")[0].split(".")[:2]
) >= (5, 14)


def _evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _all_cached(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        page = bytearray(4096)
        return kv_read._cached(fd, 0, os.fstat(fd).st_size, page)
    finally:
        os.close(fd)


def test_batches_are_page_aligned_bounded_and_cover_every_span_in_order() -> None:
    piece = kv_populate._PIECE
    size = 3 * piece + 5000
    spans = [(10, 5000), (5000, 5000 + 2 * piece + 7), (size - 3, size)]
    batches = kv_populate._batches(spans, size)
    pieces = [p for batch in batches for p in batch]
    assert all(a % PAGE == 0 and b % PAGE == 0 and a < b for a, b in pieces)
    assert all(sum(b - a for a, b in batch) <= piece for batch in batches)
    assert pieces[-1][1] == -(-size // PAGE) * PAGE  # never past the mapping's last page
    for start, end in spans:  # every page of every span lies in some piece
        for at in [*range(start, end, PAGE), end - 1]:
            assert any(a <= at < b for a, b in pieces), at
    assert pieces[0][0] == 0  # in the order given: the first span's pages first
    small = [(i * 4 * PAGE, i * 4 * PAGE + 10) for i in range(100)]  # e.g. int8 scales
    assert len(kv_populate._batches(small, 400 * PAGE)) == 1


@pytest.mark.skipif(not LINUX_5_14, reason="MADV_POPULATE_READ needs Linux 5.14+")
def test_populate_brings_a_cold_file_in_behind_the_call_and_keeps_the_mapping_alive(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cold.bin"
    path.write_bytes(os.urandom(kv_populate._PIECE * 3 + 123))
    os.sync()
    _evict(path)
    fh = MappedTensors(path, {}, 0)
    touched: list[tuple[int, int]] = []
    read_pages = fh.touch

    def touch(start: int, end: int) -> None:
        touched.append((start, end))
        read_pages(start, end)

    futures = kv_populate.populate(fh.address, fh.size, [(0, fh.size)], keep=fh, touch=touch)
    assert futures is not None and len(futures) == 3
    size = fh.size
    del fh  # the pending pieces hold the mapping: advising it after munmap would be a bug
    gc.collect()
    assert all(f.result(timeout=30) for f in futures)
    assert _all_cached(path)
    assert sorted(touched)[0][0] == 0 and sorted(touched)[-1][1] == -(-size // PAGE) * PAGE
    assert sum(b - a for a, b in touched) == -(-size // PAGE) * PAGE  # every page, once


def test_a_kernel_that_cannot_populate_gets_nothing_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int, int]] = []

    def refuse(address: int, length: int, advice: int) -> int:
        calls.append((address, length, advice))
        return -1  # EINVAL before Linux 5.14

    monkeypatch.setitem(kv_populate._state, "madvise", refuse)
    assert kv_populate.populate(4096, 3 * kv_populate._PIECE, [(0, 3 * kv_populate._PIECE)],
                                keep=None) is None  # fmt: skip
    assert len(calls) == 1 and calls[0][2] == kv_populate.MADV_POPULATE_READ
    monkeypatch.setitem(kv_populate._state, "madvise", None)  # not Linux
    assert kv_populate.populate(4096, PAGE, [(0, PAGE)], keep=None) is None


def test_layer_spans_cover_each_layer_in_order_and_nothing_else(
    tiny_lm: LoadedModel, tmp_path: Path
) -> None:
    for encoding in ("raw", "int8"):
        info = build_kv(tiny_lm, ["the cat sat on the mat"], tmp_path / f"{encoding}.st",
                        encoding=encoding)  # fmt: skip
        header = _read_header(info.path, None)
        layers = header.fingerprint.num_layers
        spans = layer_spans(header, layers)
        want = {
            (i.start + header.data_offset, i.end + header.data_offset)
            for name, i in header.tensors.items()
            if name.startswith("layers.")
        }
        assert sum(b - a for a, b in spans) == sum(b - a for a, b in want)
        assert all(any(a <= s and e <= b for a, b in spans) for s, e in want)
        layer0 = [header.tensors[n] for n in header.tensors if n.startswith("layers.0.")]
        assert spans[0][0] == min(i.start for i in layer0) + header.data_offset


def test_load_kv_reads_ahead_instead_where_it_cannot_populate(
    tiny_lm: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = build_kv(tiny_lm, ["the cat sat on the mat", "bob repairs old bicycles"],
                    tmp_path / "p.st")  # fmt: skip
    query = tiny_lm.encode(" the capital", add_special_tokens=False)
    ids = [*load_kv(info.path, tiny_lm).input_ids, *query]
    want = greedy_generate(tiny_lm, ids, cache=load_kv(info.path, tiny_lm).to_cache(tiny_lm),
                           max_new_tokens=4).tokens  # fmt: skip
    read: list[Path] = []
    monkeypatch.setattr(kv, "read_ahead", read.append)
    monkeypatch.setitem(kv_populate._state, "madvise", lambda *_: -1)
    got = load_kv(info.path, tiny_lm)
    assert read == [info.path]
    out = greedy_generate(tiny_lm, ids, cache=got.to_cache(tiny_lm), max_new_tokens=4)
    assert out.tokens == want


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_populates_with_threads_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(3 * kv_populate._PIECE))
    parent = MappedTensors(path, {}, 0)
    assert kv_populate.populate(parent.address, parent.size, [(0, parent.size)], keep=parent) \
        is not None or not LINUX_5_14  # the parent's pool now exists
    pid = os.fork()
    if pid == 0:  # the child: its pieces must run (an inherited pool would queue them forever)
        code = 1
        try:
            fh = MappedTensors(path, {}, 0)
            got = kv_populate.populate(fh.address, fh.size, [(0, fh.size)], keep=fh)
            code = 0 if got is None or all(f.result(timeout=20) for f in got) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
