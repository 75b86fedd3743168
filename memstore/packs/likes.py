"""Likes (stars) of packs by signed-in users: set, clear, count.

Idempotent by the one row per user and pack (``uniq_pack_like``): liking twice,
or two concurrent likes, leave one row; unliking what is not liked changes
nothing. An anonymous actor cannot like (``registry.not_authenticated``), so a
count is a count of accounts. Visibility is the caller's: pass a pack the actor
may see (``selectors.pack_get``). Not here: the API view (``like_apis``), the
button (frontend).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..accounts.actor import Actor
from ..errors import NotAuthenticatedError
from .models import Pack, PackLike

__all__ = ["LikeState", "like_set", "like_state"]


@dataclass(frozen=True)
class LikeState:
    likes: int
    liked: bool  # by the actor (False for an anonymous one)


def like_state(*, actor: Actor, pack: Pack) -> LikeState:
    liked = actor.user is not None and PackLike.objects.filter(user=actor.user, pack=pack).exists()
    return LikeState(likes=PackLike.objects.filter(pack=pack).count(), liked=liked)


def like_set(*, actor: Actor, pack: Pack, liked: bool) -> LikeState:
    """Like (``liked=True``) or unlike ``pack`` as ``actor``; the state afterwards."""
    if actor.user is None:
        raise NotAuthenticatedError("sign in to like a pack")
    if liked:
        PackLike.objects.get_or_create(user=actor.user, pack=pack)  # unique row: idempotent
    else:
        PackLike.objects.filter(user=actor.user, pack=pack).delete()
    return like_state(actor=actor, pack=pack)
