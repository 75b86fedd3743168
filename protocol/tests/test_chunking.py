"""Chunking memories at record boundaries: the invariants of SPEC section 14.3."""

import hashlib
import io
import json
import random

from hypothesis import given
from hypothesis import strategies as st

from protocol.chunking import MAX_CHUNK, ends_chunk, split_records

from .conftest import PROPERTY

MiB = 1024 * 1024


def big_memories(size: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "paris", "water", "memory", "cube"]
    lines, total, i = [], 0, 0
    while total < size:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 60)))
        line = json.dumps({"id": f"m{seed}-{i}", "text": text}).encode() + b"\n"
        lines.append(line)
        total += len(line)
        i += 1
    return b"".join(lines)


def _chunks(data: bytes) -> list[bytes]:
    return list(split_records(io.BytesIO(data)))


def _digests(chunks):
    return {hashlib.sha256(c).hexdigest() for c in chunks}


BASE = big_memories(6 * MiB)
BASE_LINES = BASE.splitlines(keepends=True)
BASE_DIGESTS = _digests(_chunks(BASE))


def test_chunks_concatenate_to_the_file_end_at_lines_and_stay_under_8_mib():
    chunks = _chunks(BASE)
    assert b"".join(chunks) == BASE and len(chunks) > 1
    assert all(c.endswith(b"\n") and len(c) <= MAX_CHUNK for c in chunks)


def test_a_file_without_cut_points_is_cut_at_8_mib_never_inside_a_line():
    line = b'{"id": "x", "text": "' + b"y" * 200 + b'"}\n'
    assert not ends_chunk(line)
    chunks = _chunks(line * (20 * MiB // len(line)))
    assert all(len(c) <= MAX_CHUNK and c.endswith(b"\n") for c in chunks) and len(chunks) == 3
    huge = b"z" * (MAX_CHUNK + 10)  # one line longer than a chunk (invalid anyway)
    assert b"".join(_chunks(huge)) == huge and all(len(c) <= MAX_CHUNK for c in _chunks(huge))


@PROPERTY
@given(
    seed=st.integers(0, 2**32),
    op=st.sampled_from(["edit", "insert", "delete"]),
    at=st.floats(0, 1, exclude_max=True),
    size=st.integers(1, 20000),
)
def test_one_record_edit_changes_at_most_two_chunks(seed, op, at, size):
    lines = list(BASE_LINES)
    i = int(at * len(lines))
    text = random.Random(seed).randbytes(size // 2).hex()[:size]
    line = json.dumps({"id": f"new-{seed}", "text": text}).encode() + b"\n"
    if op == "edit":
        lines[i] = line
    elif op == "insert":
        lines.insert(i, line)
    else:
        del lines[i]
    data = b"".join(lines)
    chunks = _chunks(data)
    assert b"".join(chunks) == data
    assert all(len(c) <= MAX_CHUNK for c in chunks)
    assert len(_digests(chunks) - BASE_DIGESTS) <= 2


@PROPERTY
@given(st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=80))
def test_any_lines_concatenate_back(lines):
    data = b"".join(lines)
    assert b"".join(_chunks(data)) == data
