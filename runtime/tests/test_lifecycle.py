from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.engine.lifecycle import TRANSITIONS, Event, GuardContext, State, next_state
from runtime.errors import LifecycleError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CTX = GuardContext(NOW, None, merged_into="x")


def test_every_listed_transition_is_allowed() -> None:
    for (state, event), target in TRANSITIONS.items():
        ctx = GuardContext(
            NOW, NOW - timedelta(1) if event is Event.EXPIRE else None, merged_into="x"
        )
        assert next_state(state, event, ctx) is target


def test_illegal_transition_raises_with_stable_code() -> None:
    with pytest.raises(LifecycleError) as info:
        next_state(State.GENERATED, Event.RESTORE, CTX)
    assert info.value.code == "lifecycle.illegal_transition"
    assert "activate" in info.value.detail["allowed"]


def test_removed_is_final() -> None:
    for event in Event:
        with pytest.raises(LifecycleError):
            next_state(State.REMOVED, event, CTX)


def test_expire_guard_requires_passed_expiry_unless_forced() -> None:
    ctx = GuardContext(NOW, NOW + timedelta(days=1))
    with pytest.raises(LifecycleError) as info:
        next_state(State.ACTIVATED, Event.EXPIRE, ctx)
    assert info.value.code == "lifecycle.guard_failed"
    assert next_state(State.ACTIVATED, Event.EXPIRE, ctx, force=True) is State.EXPIRED


def test_activate_guard_refuses_expired_memory() -> None:
    with pytest.raises(LifecycleError):
        next_state(State.GENERATED, Event.ACTIVATE, GuardContext(NOW, NOW - timedelta(seconds=1)))


def test_renew_needs_future_expiry() -> None:
    with pytest.raises(LifecycleError):
        next_state(State.EXPIRED, Event.RENEW, GuardContext(NOW, None, NOW - timedelta(1)))
    assert (
        next_state(State.EXPIRED, Event.RENEW, GuardContext(NOW, None, NOW + timedelta(1)))
        is State.ACTIVATED
    )


def test_merge_needs_survivor() -> None:
    with pytest.raises(LifecycleError):
        next_state(State.ACTIVATED, Event.MERGE, GuardContext(NOW, None))


@given(st.lists(st.sampled_from(list(Event)), max_size=30))
def test_random_event_sequences_follow_the_table(events: list[Event]) -> None:
    state = State.GENERATED
    for event in events:
        ctx = GuardContext(
            NOW,
            NOW - timedelta(1) if event is Event.EXPIRE else None,
            NOW + timedelta(1),
            merged_into="x",
        )
        if (state, event) in TRANSITIONS:
            state = next_state(state, event, ctx)
        else:
            with pytest.raises(LifecycleError):
                next_state(state, event, ctx)
        assert isinstance(state, State)
