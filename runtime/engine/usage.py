"""The deferred usage log: what a search or a read leaves behind, written after it answers.

Every read through the engine is recorded: each memory returned gets one more
use (``access_count``, ``last_accessed_at``), a generated memory becomes
activated (in place, never a new version), and one audit row says who read
what. Writing that in the reader's own transaction cost a search more than the
search itself (several transactions and an fsync-free commit each, plus the
activation's invalidation of the live-row cache), so :class:`UsageLog` queues
:class:`Use` records and writes a batch in one transaction:

* from a background thread, ``linger_s`` after the first queued use (uses that
  arrive meanwhile join the batch), on its own SQLite connection;
* at once, in the caller, when ``max_pending`` uses are queued (a bound on
  memory and on what a crash can lose), or when ``linger_s`` is ``None``
  (the engine then records synchronously, as it always did);
* on :meth:`UsageLog.flush`, which the engine calls before every write and
  before every read that reports counters, states or the audit log, so its own
  callers always see their earlier reads; and on :meth:`UsageLog.close`
  (``Engine.close``, and interpreter exit for an engine left open).

Durability: a clean close loses nothing. A crash (SIGKILL, power loss) loses
the uses still queued — at most ``max_pending`` reads from the last
``linger_s`` seconds — : their counters, activations and audit rows are
missing, as if those reads had not happened; the audit chain stays intact
(rows are only ever appended in committed batches). Another process sharing
the home sees a read's effects once its batch is written (within ``linger_s``).
A queued read's audit row may therefore follow, in ``seq`` order, rows the
engine wrote meanwhile (a refused access, say); its ``at`` is the time of the read.

Lock order: the engine's write lock, then the flush lock, in every thread, so a
flush by a caller that holds the write lock (maintenance) cannot deadlock with
the background writer.

Not here: deciding what counts as a use (:meth:`runtime.engine.engine.Engine.record_use`),
the SQL (:mod:`runtime.engine.store_audit`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .store_audit import AuditQueries, AuditRow

__all__ = ["UsageLog", "Use"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Use:
    """One read to record: when, by whom, which memories (rowid, id, was generated)."""

    at: float
    principal: str | None
    action: str
    memories: tuple[tuple[int, str, bool], ...]
    detail: Mapping[str, Any] = field(default_factory=dict)


class UsageLog:
    """Queued :class:`Use` records and their writer (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        write_lock: AbstractContextManager[Any],
        *,
        linger_s: float | None = 0.2,
        max_pending: int = 256,
    ) -> None:
        self.path = Path(path)
        self.write_lock = write_lock
        self.linger_s = linger_s
        self.max_pending = max(1, max_pending)
        self._pending: list[Use] = []
        self._in_flight = False
        self._lock = threading.Lock()  # guards _pending, _in_flight, _closed
        self._wake = threading.Condition(self._lock)
        self._flush_lock = threading.Lock()  # one writer at a time on _writer
        self._writer: AuditQueries | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def add(self, use: Use) -> None:
        """Queue ``use``; write now if the queue is full or recording is synchronous."""
        with self._lock:
            self._pending.append(use)
            now = self.linger_s is None or self._closed or len(self._pending) >= self.max_pending
            if not now:
                self._start_locked()
                self._wake.notify()
        if now:
            self.flush()

    def flush(self) -> None:
        """Write every queued use (and wait for a batch being written) before returning."""
        with self._lock:
            if not self._pending and not self._in_flight:
                return
        with self.write_lock, self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
                self._in_flight = bool(batch)
            try:
                self._write(batch)
            except BaseException:
                with self._lock:  # keep them for the next flush (order kept)
                    self._pending[:0] = batch
                raise
            finally:
                with self._lock:
                    self._in_flight = False

    def close(self) -> None:
        """Stop the background writer and write what is queued. Idempotent."""
        with self._lock:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()
        with self._flush_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # ---- internals

    def _start_locked(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="memos-usage-log", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                # Let a burst of reads join this batch.
                self._wake.wait_for(lambda: self._closed, timeout=self.linger_s)
            try:
                self.flush()
            except Exception:  # the next flush (a write, close) retries and raises
                log.warning("could not write the usage log; will retry", exc_info=True)
                with self._lock:
                    self._wake.wait_for(lambda: self._closed, timeout=1.0)

    def _write(self, batch: Sequence[Use]) -> None:
        if not batch:
            return
        if self._writer is None:
            self._writer = AuditQueries(self.path, shared_by_threads=True)
        writer = self._writer
        with writer.write():
            rows: list[AuditRow] = []
            for use in batch:
                writer.touch([rowid for rowid, _, _ in use.memories], use.at)
                for rowid, memory_id, generated in use.memories:
                    version = writer.activate(rowid, use.at) if generated else None
                    if version is not None:
                        rows.append(_activation(use, memory_id, version))
                detail = {"memories": [m for _, m, _ in use.memories], **use.detail}
                rows.append((use.at, use.principal, use.action, None, detail))
            writer.audit_many(rows)


def _activation(use: Use, memory_id: str, version: int) -> AuditRow:
    detail = {
        "event": "activate",
        "reason": f"first use ({use.action})",
        "from": "generated",
        "to": "activated",
        "version": version,
    }
    return (use.at, use.principal, "transition", memory_id, detail)
