"""HTTP byte ranges (RFC 9110 section 14.1.2): examples and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstore.storage.ranges import ByteRange, RangeNotSatisfiable, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=0-0", (0, 0)),
        ("bytes=5-", (5, 99)),
        ("bytes=-3", (97, 99)),
        ("bytes=-1000", (0, 99)),  # a suffix longer than the blob is the whole blob
        ("bytes=90-1000", (90, 99)),  # the last position is clipped
        ("bytes=99-99", (99, 99)),
    ],
)
def test_single_ranges(header: str, expected: tuple[int, int]) -> None:
    found = parse_range(header, 100)
    assert found is not None and (found.start, found.end) == expected
    assert found.content_range == f"bytes {expected[0]}-{expected[1]}/100"


@pytest.mark.parametrize(
    "header", [None, "", "bytes=", "bytes=9-2", "items=0-1", "bytes=0-1,3-4", "bytes=a-b"]
)
def test_ignored_headers_mean_the_whole_blob(header: str | None) -> None:
    assert parse_range(header, 100) is None


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)]
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as err:
        parse_range(header, size)
    assert err.value.content_range == f"bytes */{size}"


@given(st.text(max_size=60), st.integers(min_value=0, max_value=2**40))
def test_any_header_gives_a_range_inside_the_blob_or_refuses(header: str, size: int) -> None:
    try:
        found = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    if found is not None:
        assert isinstance(found, ByteRange)
        assert 0 <= found.start <= found.end < size and found.length >= 1


@given(
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=10**12),
)
def test_first_last_ranges_select_what_they_say(size: int, first: int, span: int) -> None:
    last = first + span
    try:
        found = parse_range(f"bytes={first}-{last}", size)
    except RangeNotSatisfiable:
        assert first >= size
        return
    assert found == ByteRange(start=first, end=min(last, size - 1), size=size)
