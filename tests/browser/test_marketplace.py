"""The marketplace end to end in a real Chromium: publish, search, buy, library, token, install."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from memstore.accounts.actor import Actor
from memstore.commerce.models import LedgerEntry, Order, Payment
from memstore.packs.models import Entitlement, Pack
from memstore.packs.services import Price, pack_publish
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack
from protocol import SigningKey

from .conftest import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEEDLE = (
    "The lighthouse keeper keeps the spare lamp lenses "
    "in the copper cabinet under the spiral stairs."
)
OTHERS = [
    "Fog signals sound every thirty seconds when visibility drops below two nautical miles.",
    "The logbook records wind speed, sea state and passing ships at every change of watch.",
    "Paraffin for the lamp is delivered by boat on the first Monday of each month.",
]
DESCRIPTION = """# Lighthouse keeper's notes

Practical notes from a working lighthouse: **fog signals**, the lamp, the logbook.

* 4 plaintext memories
* Signed by the keeper's key
"""
CARD = {"#id_expiry": "12/34", "#id_cvc": "123"}
REPO = Path(__file__).resolve().parents[2]


def pay(page: Any, number: str) -> None:
    page.fill("#id_card_number", number)
    for selector, value in CARD.items():
        page.fill(selector, value)
    page.click("#pay")


def test_publish_search_buy_library_token_install(
    page: Any, site: str, shot: Any, tmp_path: Path, celery_worker_session: Any
) -> None:
    # The publisher signs up, registers the key `memos keygen` would make, and uploads a pack.
    sign_up(page, site, "carol")
    shot(page, "home-signed-in")
    key = SigningKey.generate()
    page.goto(f"{site}/accounts/keys/")
    page.fill("#id_public_key", key.public_key.to_text())
    page.fill("#id_label", "carol's laptop")
    page.click("button:has-text('Register key')")
    page.wait_for_selector("text=registered for carol")
    shot(page, "account-keys")
    pack_file = build_pack(
        tmp_path,
        name="carol/lighthouse",
        keys=[key],
        title="Lighthouse Keeper's Notes",
        description=DESCRIPTION,
        keywords=["lighthouse", "maritime"],
        memories=[*OTHERS, NEEDLE],
        license="CC-BY-4.0",
    )
    page.goto(f"{site}/dashboard/")
    page.set_input_files("#id_file", str(pack_file))
    page.fill("#id_price", "9.99")
    page.select_option("#id_currency", "EUR")
    page.click("button:has-text('Upload and publish')")
    page.wait_for_selector("text=Published carol/lighthouse@1.0.0")
    # The dashboard's script polls the ingestion status until the real worker is done.
    page.wait_for_selector("[data-ingest-url][data-status=done]", timeout=240_000)
    assert "4 memories" in page.inner_text("[data-ingest-url]")
    shot(page, "dashboard")
    page.click("button:has-text('Log out')")

    sign_up(page, site, "dave")
    assert page.is_visible("article.card a:has-text('Lighthouse Keeper')")  # listed under "New"
    shot(page, "home")
    # A buyer finds it by a phrase from one of its previews (the first three memories, shown
    # on the pack page); the fourth, the needle, stays out of a stranger's search until bought.
    page.fill("#hero-q", "when do the fog signals sound")
    page.press("#hero-q", "Enter")
    page.wait_for_selector("#mem-h")
    first = page.locator("ol.hits li").first
    assert "carol/lighthouse" in first.inner_text()
    snippet = first.locator(".snippet").inner_text()
    assert "paid" in first.inner_text() and snippet.startswith("Fog signals sound")
    assert NEEDLE not in page.content()
    shot(page, "search")

    first.locator("a", has_text="carol/lighthouse").click()
    page.wait_for_selector("h1:has-text('Lighthouse Keeper')")
    assert "✓ verified" in page.inner_text("#sig-h + *") or page.is_visible("text=✓ verified")
    assert page.inner_text("#install-cmd") == "memos install carol/lighthouse"
    page.click(".copy-btn")  # progressive enhancement: the copy button
    page.wait_for_selector(".copy-btn:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == "memos install carol/lighthouse"
    assert page.is_visible("text=Fog signals") or page.is_visible("strong:has-text('fog signals')")
    shot(page, "pack")
    page.click(".crumbs a:has-text('carol')")
    page.wait_for_selector("h2:has-text('Signing keys')")
    shot(page, "publisher")
    page.go_back()

    page.click("text=Buy €9.99")
    page.wait_for_selector("#pay")
    shot(page, "checkout")
    pay(page, "4242 4242 4242 4242")
    page.wait_for_selector("text=Payment received")
    assert page.is_visible(".badge.order-paid")
    shot(page, "order")
    page.click("text=Go to your library")
    assert page.is_visible("a:has-text('carol/lighthouse')")
    shot(page, "library")

    # A token made in the UI installs the pack.
    page.goto(f"{site}/accounts/tokens/")
    page.fill("#id_name", "memos on my laptop")
    page.click("button:has-text('Create token')")
    token = page.input_value("#new-token")
    assert token.startswith("mst_")
    shot(page, "account-tokens")

    resolve = f"{site}/api/v1/resolve/carol/lighthouse"
    assert httpx.get(resolve).status_code == 401
    response = httpx.get(resolve, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "1.0.0"

    home = tmp_path / "memos-home"
    env = {
        **os.environ,
        "MEMOS_HOME": str(home),
        "MEMOS_REGISTRY": site,
        "MEMOS_EMBEDDER": "hash",
        "MEMOS_MAINTAIN_HOURS": "0",
    }
    env.pop("MEMOS_TOKEN", None)
    memos = [str(Path(sys.executable).with_name("memos"))]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*memos, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    login = run("login", "--token", token)
    assert login.returncode == 0, login.stdout + login.stderr
    result = run("install", "carol/lighthouse", "--no-lock", "--json", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "carol/lighthouse" in result.stdout
    listed = run("list", "--json")
    assert listed.returncode == 0 and "carol/lighthouse" in listed.stdout, (
        listed.stdout + listed.stderr
    )


@pytest.fixture
def paid_pack(tmp_path: Path, local_storage: Any) -> Pack:
    user, _, key = publisher("acme", "alice")
    version = pack_publish(
        actor=Actor(user=user, scopes=None),
        pack_file=build_pack(
            tmp_path,
            name="acme/atlas",
            keys=[key],
            title="Atlas of Tides",
            memories=["High tide follows the moon by about fifty minutes a day."],
        ),
        price=Price(1250, "EUR"),
    )
    return version.pack


def test_declined_card_is_refused_and_grants_nothing(
    page: Any, site: str, shot: Any, paid_pack: Pack
) -> None:
    sign_up(page, site, "erin")
    page.goto(f"{site}/p/acme/atlas/buy")
    pay(page, "4000 0000 0000 0002")
    page.wait_for_selector("text=Your card was declined")
    shot(page, "checkout-declined")
    assert not Entitlement.objects.filter(user__username="erin").exists()
    assert Payment.objects.get(order__buyer__username="erin").status == "declined"
    # The same checkout then succeeds with another card: still one order.
    pay(page, "4242424242424242")
    page.wait_for_selector("text=Payment received")
    assert Order.objects.filter(buyer__username="erin").count() == 1


def test_double_click_on_pay_charges_once(page: Any, site: str, paid_pack: Pack) -> None:
    sign_up(page, site, "frank")
    page.goto(f"{site}/p/acme/atlas/buy")
    seen: list[str] = []
    page.on(
        "request",
        lambda r: seen.append(r.method) if r.url.endswith("/buy") and r.method == "POST" else None,
    )
    page.fill("#id_card_number", "4242424242424242")
    for selector, value in CARD.items():
        page.fill(selector, value)
    # Chromium may fold a double click into one navigation, so a second submit of the
    # same form (same keys) is also sent by script, racing the double click.
    page.evaluate(
        """() => { const f = document.querySelector('form[data-once]');
                   fetch(location.href, {method: 'POST', body: new FormData(f),
                                         credentials: 'same-origin'}); }"""
    )
    page.dblclick("#pay")
    page.wait_for_load_state("networkidle")
    # Which page the browser ends on depends on which submit the server answered first
    # (the receipt, or the form saying the payment is being processed); the money must not.
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline
        and not Payment.objects.filter(order__buyer__username="frank", status="succeeded").exists()
    ):
        time.sleep(0.2)
    assert len(seen) >= 2  # the server really got more than one submit
    payments = Payment.objects.filter(order__buyer__username="frank")
    assert payments.count() == 1 and payments.get().attempts == 1
    assert Order.objects.filter(buyer__username="frank").count() == 1
    assert LedgerEntry.objects.filter(order_line__order__buyer__username="frank").count() == 1
    assert Entitlement.objects.filter(user__username="frank", revoked_at__isnull=True).count() == 1


def test_core_flow_works_without_javascript(
    browser: Any, site: str, tmp_path: Path, local_storage: Any
) -> None:
    user, _, key = publisher("acme", "alice")
    pack_publish(
        actor=Actor(user=user, scopes=None),
        pack_file=build_pack(tmp_path, name="acme/free-tips", keys=[key], title="Free Tips"),
    )
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_up(page, site, "gina")
        page.goto(f"{site}/p/acme/free-tips")
        page.click("button:has-text('Add to library')")
        page.wait_for_selector("text=was added to your library")
        assert page.is_visible("a:has-text('acme/free-tips')")
        assert not page.is_visible(
            ".copy-btn"
        )  # the copy button needs JS; the command stays selectable
    finally:
        context.close()


def test_pages_fit_a_phone_keyboard_and_the_asset_budget(
    browser: Any, site: str, shot: Any, paid_pack: Pack
) -> None:
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    sizes: dict[str, int] = {}

    def record(response: Any) -> None:
        if response.request.resource_type != "document":
            try:
                sizes[response.url] = len(response.body())
            except Exception:  # redirects have no body
                sizes[response.url] = 0

    page.on("response", record)
    try:
        pages = [
            ("home", "/"),
            ("pack", "/p/acme/atlas"),
            ("login", "/accounts/login/"),
            ("search", "/search?q=tides"),
            ("signup", "/accounts/signup/"),
        ]
        for name, path in pages:
            sizes.clear()
            page.goto(f"{site}{path}")
            page.wait_for_load_state("networkidle")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} overflows a phone's width ({width}px)"
            assert sum(sizes.values()) < 200 * 1024, (
                f"{path} loads {sum(sizes.values())} bytes of assets"
            )
            shot(page, f"phone-{name}")
        sign_up(page, site, "hana")
        for name, path in [
            ("checkout", "/p/acme/atlas/buy"),
            ("dashboard", "/dashboard/"),
            ("tokens", "/accounts/tokens/"),
            ("keys", "/accounts/keys/"),
        ]:
            page.goto(f"{site}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} overflows a phone's width ({width}px)"
            shot(page, f"phone-{name}")
        page.click("button:has-text('Log out')")
        page.goto(f"{site}/")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#main"
    finally:
        context.close()
