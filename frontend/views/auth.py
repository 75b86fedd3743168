"""Sign up, log in (rate-limited), log out. Password reset uses Django's views (urls.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from memstore.accounts.services import user_create
from memstore.errors import RegistryError

from ..forms import LoginForm, SignupForm


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
    """Django's login view. django-axes limits it (``frontend.ratelimit``): after 5 failed
    attempts from one address it answers 429 with a lockout page, with backoff."""

    template_name = "frontend/auth/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True
    next_page = "/"
