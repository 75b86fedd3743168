"""URLs of the web marketplace, included at the site root by ``server.urls``."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import path, reverse_lazy
from django.views.generic import RedirectView

from .views import account, auth, checkout, dashboard, likes, pages

app_name = "frontend"

_NS = "<slug:namespace>"
_PACK = f"p/{_NS}/<slug:name>"

urlpatterns = [
    path("", pages.home, name="home"),
    # Clients that ask for /favicon.ico without reading the page's <link rel=icon>.
    path("favicon.ico", RedirectView.as_view(url=static("frontend/favicon.svg"), permanent=True)),
    path("search", pages.search, name="search"),
    path(_PACK, pages.pack_detail, name="pack"),
    path(f"{_PACK}/like", likes.pack_like, name="pack_like"),
    path(f"{_PACK}/buy", checkout.checkout, name="checkout"),
    path(f"{_PACK}/claim", checkout.claim, name="claim"),
    path("orders/<uuid:public_id>", checkout.order_detail, name="order"),
    path(f"u/{_NS}", pages.publisher, name="publisher"),
    # account
    path("accounts/signup/", auth.signup, name="signup"),
    path("accounts/login/", auth.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="/"), name="logout"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(
            template_name="frontend/auth/password_reset.html",
            email_template_name="frontend/auth/password_reset_email.txt",
            subject_template_name="frontend/auth/password_reset_subject.txt",
            success_url=reverse_lazy("frontend:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="frontend/auth/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="frontend/auth/password_reset_confirm.html",
            success_url=reverse_lazy("frontend:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="frontend/auth/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("accounts/tokens/", account.tokens, name="tokens"),
    path("accounts/tokens/<int:token_id>/revoke", account.token_revoke, name="token_revoke"),
    path("accounts/keys/", account.keys, name="keys"),
    path(f"accounts/keys/{_NS}/<str:keyid>/revoke", account.key_revoke, name="key_revoke"),
    path("accounts/library/", account.library, name="library"),
    # publishing
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path(
        "dashboard/versions/<int:version_id>/ingest",
        dashboard.ingest_status,
        name="ingest_status",
    ),
    path("dashboard/orders/<uuid:public_id>/refund", dashboard.refund, name="refund"),
    path("dashboard/versions/<int:version_id>/yank", dashboard.yank, name="yank"),
    path("dashboard/namespaces", dashboard.namespace_new, name="namespace_new"),
]
