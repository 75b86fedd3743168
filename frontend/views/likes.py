"""The like button of the pack page: a POST form (Django's CSRF check), then back to the pack.

Anonymous visitors are sent to sign in and come back to the pack. Idempotent:
the form says which state it wants (``liked=1`` or ``0``), so a double submit
or a second tab changes nothing more. Not here: the rule (``memstore.packs.likes``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from memstore.packs.likes import like_set

from ._common import actor_of, visible_pack


@require_POST
def pack_like(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    pack = visible_pack(request, namespace, name)
    back = reverse("frontend:pack", args=[namespace, name])
    actor = actor_of(request)
    if actor.user is None:
        return redirect(f"{reverse('frontend:login')}?{urlencode({'next': back})}")
    like_set(actor=actor, pack=pack, liked=request.POST.get("liked") != "0")
    return redirect(f"{back}#likes")
