from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from memstore.accounts.models import Membership, User

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_signup_creates_the_user_and_namespace_and_logs_in(client):
    response = client.post(
        "/accounts/signup/", {"username": "carol", "email": "c@example.org", "password": PASSWORD}
    )
    assert response.status_code == 302
    user = User.objects.get(username="carol")
    assert Membership.objects.get(user=user).namespace.name == "carol"
    assert b"carol" in client.get("/").content  # logged in: the header shows the name


def test_signup_refuses_bad_and_taken_names(client, buyer):
    bad = client.post(
        "/accounts/signup/",
        {"username": "Bad Name", "email": "x@example.org", "password": PASSWORD},
    )
    taken = client.post(
        "/accounts/signup/", {"username": "bob", "email": "x@example.org", "password": PASSWORD}
    )
    assert bad.status_code == taken.status_code == 400
    assert b"lower-case" in bad.content and b"taken" in taken.content


def test_login_and_logout(client, buyer):
    response = client.post(
        "/accounts/login/", {"username": "bob", "password": PASSWORD, "next": "/accounts/library/"}
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/library/"
    assert client.get("/accounts/library/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/accounts/library/").status_code == 302


def test_login_refuses_open_redirects(client, buyer):
    response = client.post(
        "/accounts/login/",
        {"username": "bob", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


def test_login_is_rate_limited_after_five_failures(client, buyer):
    for _ in range(4):
        assert (
            client.post("/accounts/login/", {"username": "bob", "password": "wrong"}).status_code
            == 200
        )
    # django-axes locks the address at the 5th failure (frontend/ratelimit.py)
    assert (
        client.post("/accounts/login/", {"username": "bob", "password": "wrong"}).status_code == 429
    )
    blocked = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
    assert blocked.status_code == 429
    assert b"Too many failed attempts" in blocked.content
    assert not blocked.wsgi_request.user.is_authenticated


def test_pages_that_need_an_account_redirect_to_login(client):
    for url in ("/accounts/tokens/", "/accounts/keys/", "/accounts/library/", "/dashboard/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(
            "/accounts/login/?next="
        )


def test_csrf_is_enforced_on_forms(buyer):
    strict = Client(enforce_csrf_checks=True)
    assert (
        strict.post("/accounts/login/", {"username": "bob", "password": PASSWORD}).status_code
        == 403
    )
    strict.force_login(buyer)
    assert strict.post("/accounts/tokens/", {"name": "x", "scopes": ["read"]}).status_code == 403


def test_password_reset_by_email(client, buyer):
    response = client.post("/accounts/password-reset/", {"email": "bob@example.org"})
    assert response.status_code == 302
    (message,) = mail.outbox
    link = re.search(r"http://testserver(/accounts/reset/\S+)", message.body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "n3w-Passw0rd!", "new_password2": "n3w-Passw0rd!"},
    )
    assert done.status_code == 302
    assert Client().login(username="bob", password="n3w-Passw0rd!")


def test_login_limit_also_counts_per_address_across_usernames(client, buyer):
    for i in range(5):
        client.post("/accounts/login/", {"username": f"nobody{i}", "password": "wrong"})
    assert (
        client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}).status_code
        == 429
    )


def _fail_five_times(client, **headers):
    for i in range(5):
        client.post("/accounts/login/", {"username": f"nobody{i}", "password": "wrong"}, **headers)


def _login(client, **headers):
    return client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}, **headers)


def test_without_a_proxy_x_forwarded_for_cannot_escape_the_login_limit(client, buyer, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    _fail_five_times(client, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert _login(client, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 429


def test_behind_one_proxy_the_login_limit_counts_the_forwarded_client(client, buyer, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    _fail_five_times(client, HTTP_X_FORWARDED_FOR="198.51.100.7")
    # The proxy's own address (REMOTE_ADDR) is shared by everyone: other clients still log in.
    assert _login(Client(), HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 302
    # A client cannot escape by writing its own X-Forwarded-For: the proxy appends the real one.
    spoofed = _login(client, HTTP_X_FORWARDED_FOR="203.0.113.1, 198.51.100.7")
    assert spoofed.status_code == 429
