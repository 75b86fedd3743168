"""The ingestion status of a version, as an explicit transition table."""

from __future__ import annotations

from enum import StrEnum

from ..errors import ConflictError


class IngestStatus(StrEnum):
    PENDING = "pending"  # enqueued after the publish committed
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # gave up after the retries; can be re-enqueued


TRANSITIONS: dict[IngestStatus, frozenset[IngestStatus]] = {
    IngestStatus.PENDING: frozenset({IngestStatus.RUNNING}),
    # running -> pending: a retry; running -> running: a redelivered task after a worker crash
    IngestStatus.RUNNING: frozenset(
        {IngestStatus.DONE, IngestStatus.FAILED, IngestStatus.PENDING, IngestStatus.RUNNING}
    ),
    IngestStatus.DONE: frozenset({IngestStatus.PENDING}),  # re-index
    IngestStatus.FAILED: frozenset({IngestStatus.PENDING}),
}


def check_transition(current: IngestStatus, new: IngestStatus) -> None:
    if new not in TRANSITIONS[current]:
        raise ConflictError(
            f"ingestion cannot go from {current.value} to {new.value}",
            code="registry.illegal_transition",
            current=current.value,
            new=new.value,
        )
