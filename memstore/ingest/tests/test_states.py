"""The ingestion status transition table."""

from __future__ import annotations

from itertools import pairwise

import pytest

from memstore.errors import ConflictError
from memstore.ingest.states import TRANSITIONS, IngestStatus, check_transition


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(IngestStatus)


@pytest.mark.parametrize(
    ("current", "new"),
    [("pending", "done"), ("pending", "failed"), ("done", "running"), ("failed", "done")],
)
def test_illegal_moves_raise(current: str, new: str) -> None:
    with pytest.raises(ConflictError) as err:
        check_transition(IngestStatus(current), IngestStatus(new))
    assert err.value.code == "registry.illegal_transition"


def test_the_normal_path_is_legal() -> None:
    path = ["pending", "running", "pending", "running", "done", "pending"]
    for current, new in pairwise(path):
        check_transition(IngestStatus(current), IngestStatus(new))
