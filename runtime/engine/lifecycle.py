"""MemLifecycle: the explicit state machine of a memory.

States (MemOS paper, plus one)::

    generated ──activate──▶ activated ──archive──▶ archived ──restore──▶ activated
        │                      │                      │
        ├──merge──▶ merged ◀───┴──────merge───────────┤
        ├──expire─▶ expired ◀──────expire─────────────┘   (merged ─expire─▶ expired)
        └──remove─▶ removed   (from every state but removed)
    expired ──renew──▶ activated   (guard: the new expiry is in the future)

``removed`` is the state we add: a tombstone. Deleting a row would break the
Time Machine (history and point-in-time reads of a deleted memory) and make
``rollback`` of a deletion impossible; a tombstone keeps both.

``rollback`` is not in the table: it restores a whole earlier snapshot
(state included) and is recorded as its own version and audit event.

Retrieval sees ``generated`` and ``activated`` memories (``archived`` only
when asked for). Illegal moves raise :class:`LifecycleError`
(``lifecycle.illegal_transition``); a failed guard raises
``lifecycle.guard_failed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from ..errors import LifecycleError

__all__ = [
    "RETRIEVABLE",
    "TRANSITIONS",
    "Event",
    "GuardContext",
    "State",
    "next_state",
]


class State(StrEnum):
    GENERATED = "generated"
    ACTIVATED = "activated"
    MERGED = "merged"
    ARCHIVED = "archived"
    EXPIRED = "expired"
    REMOVED = "removed"


class Event(StrEnum):
    ACTIVATE = "activate"
    ARCHIVE = "archive"
    RESTORE = "restore"
    MERGE = "merge"
    EXPIRE = "expire"
    RENEW = "renew"
    REMOVE = "remove"


#: (state, event) -> next state. Anything not listed is illegal.
TRANSITIONS: Mapping[tuple[State, Event], State] = MappingProxyType(
    {
        (State.GENERATED, Event.ACTIVATE): State.ACTIVATED,
        (State.GENERATED, Event.ARCHIVE): State.ARCHIVED,
        (State.GENERATED, Event.MERGE): State.MERGED,
        (State.GENERATED, Event.EXPIRE): State.EXPIRED,
        (State.ACTIVATED, Event.ARCHIVE): State.ARCHIVED,
        (State.ACTIVATED, Event.MERGE): State.MERGED,
        (State.ACTIVATED, Event.EXPIRE): State.EXPIRED,
        (State.ARCHIVED, Event.RESTORE): State.ACTIVATED,
        (State.ARCHIVED, Event.MERGE): State.MERGED,
        (State.ARCHIVED, Event.EXPIRE): State.EXPIRED,
        (State.MERGED, Event.EXPIRE): State.EXPIRED,
        (State.EXPIRED, Event.RENEW): State.ACTIVATED,
        **{(s, Event.REMOVE): State.REMOVED for s in State if s is not State.REMOVED},
    }
)

#: States that search and plans return by default.
RETRIEVABLE: frozenset[State] = frozenset({State.GENERATED, State.ACTIVATED})


@dataclass(frozen=True)
class GuardContext:
    """What guards look at: the time, the memory's expiry, and event arguments."""

    now: datetime
    expires_at: datetime | None
    new_expires_at: datetime | None = None
    merged_into: str | None = None


def _not_expired(ctx: GuardContext) -> str | None:
    if ctx.expires_at is not None and ctx.expires_at <= ctx.now:
        return "the memory's expiry has passed; renew it with a new expiry instead"
    return None


def _has_expired(ctx: GuardContext) -> str | None:
    if ctx.expires_at is None or ctx.expires_at > ctx.now:
        return "the memory's expiry has not passed yet"
    return None


def _renewal_in_future(ctx: GuardContext) -> str | None:
    if ctx.new_expires_at is not None and ctx.new_expires_at <= ctx.now:
        return "a renewal needs an expiry in the future (or none)"
    return None


def _has_survivor(ctx: GuardContext) -> str | None:
    return None if ctx.merged_into else "merge needs the id of the memory it is merged into"


_GUARDS: Mapping[Event, Callable[[GuardContext], str | None]] = MappingProxyType(
    {
        Event.ACTIVATE: _not_expired,
        Event.RESTORE: _not_expired,
        Event.EXPIRE: _has_expired,
        Event.RENEW: _renewal_in_future,
        Event.MERGE: _has_survivor,
    }
)


def next_state(state: State, event: Event, ctx: GuardContext, *, force: bool = False) -> State:
    """The state after ``event``; raise if the move is illegal or its guard fails.

    ``force`` skips guards (not the table): used by ``memos`` commands an
    operator runs on purpose, e.g. expiring a memory before its TTL.
    """
    target = TRANSITIONS.get((state, event))
    if target is None:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s is state)
        raise LifecycleError(
            f"cannot {event.value} a memory in state {state.value}"
            + (f" (allowed: {', '.join(allowed)})" if allowed else " (it is final)"),
            code="lifecycle.illegal_transition",
            state=state.value,
            event=event.value,
            allowed=allowed,
        )
    guard = _GUARDS.get(event)
    problem = guard(ctx) if guard and not force else None
    if problem:
        raise LifecycleError(
            f"cannot {event.value}: {problem}",
            code="lifecycle.guard_failed",
            state=state.value,
            event=event.value,
        )
    return target
