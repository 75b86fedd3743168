"""Sign up, log in (rate-limited), log out. Password reset uses Django's views (urls.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from memstore.accounts.services import user_create
from memstore.errors import RegistryError

from .. import ratelimit
from ..forms import LoginForm, SignupForm
from ._common import client_ip


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("/")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_create(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                email=form.cleaned_data["email"],
            )
        except RegistryError as exc:
            form.add_error("username", exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, f"Welcome, {user.username}! Your namespace is {user.username}."
            )
            return redirect(_next_url(request))
    return render(
        request,
        "frontend/auth/signup.html",
        {"form": form, "next": _next_url(request)},
        status=400 if form.errors else 200,
    )


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login view, refusing more than 5 failed attempts per 5 minutes
    from one address or for one username (answers 429 while blocked)."""

    template_name = "frontend/auth/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True
    next_page = "/"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", "")).strip().lower()[:150]
        ip = client_ip(request)
        if ratelimit.blocked("login-ip", ip) or (
            username and ratelimit.blocked("login-user", username)
        ):
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, "Too many failed attempts. Wait a few minutes and try again.")
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            response["Retry-After"] = str(ratelimit.LOGIN_LIMIT.window_s)
            return response
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            ratelimit.reset("login-user", username)
        else:
            ratelimit.hit("login-ip", ip)
            if username:
                ratelimit.hit("login-user", username)
        return response
