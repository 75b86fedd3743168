"""The account area: API tokens, signing keys, the library of purchases."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from memstore.accounts import services as accounts
from memstore.accounts.models import ApiToken, Namespace
from memstore.accounts.selectors import namespace_keys
from memstore.commerce import selectors as commerce_selectors
from memstore.errors import RegistryError

from .. import queries
from ..forms import KeyRegisterForm, KeyRevokeForm, TokenCreateForm
from ._common import actor_of, error_text, user_of

_NEW_TOKEN = "frontend.new_token"  # noqa: S105 - a session key name, not a secret


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    namespaces = [ns.name for ns in queries.maintained_namespaces(user=user)]
    form = TokenCreateForm(request.POST or None, namespaces=namespaces)
    if request.method == "POST" and form.is_valid():
        try:
            token, raw = accounts.api_token_create(
                user=user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                actor=actor_of(request),
            )
        except RegistryError as exc:
            form.add_error(None, error_text(exc))
        else:
            # Shown once, on the next page view only (post/redirect/get).
            expires = token.expires_at.strftime("%Y-%m-%d") if token.expires_at else "never"
            request.session[_NEW_TOKEN] = {"id": token.pk, "raw": raw, "expires": expires}
            return redirect("frontend:tokens")
    new_token = request.session.pop(_NEW_TOKEN, None)
    rows = ApiToken.objects.filter(user=user).order_by("-created_at", "-id")
    return render(
        request,
        "frontend/account/tokens.html",
        {"form": form, "tokens": rows, "new_token": new_token},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        accounts.api_token_revoke(actor=actor_of(request), token_id=token_id)
    except RegistryError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, "The token was revoked.")
    return redirect("frontend:tokens")


@login_required
def keys(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    namespaces = queries.maintained_namespaces(user=user)
    form = KeyRegisterForm(request.POST or None, namespaces=[ns.name for ns in namespaces])
    if request.method == "POST" and form.is_valid():
        namespace = next(ns for ns in namespaces if ns.name == form.cleaned_data["namespace"])
        try:
            key = accounts.signing_key_register(
                actor=actor_of(request),
                namespace=namespace,
                public_key=form.cleaned_data["public_key"].strip(),
                label=form.cleaned_data["label"],
            )
        except RegistryError as exc:
            form.add_error("public_key", error_text(exc))
        else:
            messages.success(request, f"Key {key.keyid[:16]}… registered for {namespace.name}.")
            return redirect("frontend:keys")
    groups = [(ns, namespace_keys(namespace=ns)) for ns in namespaces]
    return render(
        request,
        "frontend/account/keys.html",
        {"form": form, "groups": groups, "revoke_form": KeyRevokeForm()},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def key_revoke(request: HttpRequest, namespace: str, keyid: str) -> HttpResponse:
    ns = Namespace.objects.filter(name=namespace).first()
    if ns is None:
        raise Http404("no such namespace")
    form = KeyRevokeForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        accounts.signing_key_revoke(
            actor=actor_of(request), namespace=ns, keyid=keyid, reason=reason
        )
    except RegistryError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"Key {keyid[:16]}… revoked.")
    return redirect("frontend:keys")


@login_required
def library(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    return render(
        request,
        "frontend/account/library.html",
        {
            "items": commerce_selectors.library_for_user(user=user),
            "orders": commerce_selectors.orders_for_buyer(buyer=user)[:50],
        },
    )
