"""The pack page as a buyer sees it in a real Chromium: the card, previews, the version diff,
the phone layout, and full-page screenshots of home, search and a pack page at desktop and
phone widths (into ``var/test-artefacts/``), none overflowing horizontally."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from memstore.accounts.actor import Actor
from memstore.ingest.models import IngestJob
from memstore.packs.models import Pack
from memstore.packs.services import Price, pack_publish
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTEFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artefacts" / "pack-pages"
WIDTHS = {"desktop": (1440, 900), "phone": (360, 740)}
CARD = """---
license: CC-BY-4.0
base_models: [HuggingFaceTB/SmolLM2-135M-Instruct]
languages: [en]
tags: [tides, harbour]
personal_data: No personal data; public tide tables only.
preview: [m2, m4]
changelog: {changelog}
---
# Harbour pilot's notes

Tides, pilotage and berths of a small harbour, checked against the **harbour office**.

<script>document.title = "pwned"</script>
"""
V1 = [
    "Spring tides at the harbour mouth reach 4.2 metres above chart datum.",
    "The pilot boards inbound ships two miles south of the fairway buoy.",
    "Berth 3 is reserved for the ferry between 07:00 and 09:00.",
    "Neap tides leave 1.1 metres over the bar at low water.",
]
V2 = [
    {"id": "m1", "text": V1[0]},
    {"id": "m2", "text": "The pilot boards inbound ships three miles south of the fairway buoy."},
    {"id": "m4", "text": V1[3]},
    {"id": "m5", "text": "The harbour office answers on VHF channel 14 around the clock."},
]


# Elements whose right edge passes the viewport, outside boxes that scroll on purpose.
STICKING_OUT = """width => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 2
               && !e.closest('.table-wrap, pre, .diff-list, .blob-list'))
  .slice(0, 12)
  .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`)"""


@pytest.fixture
def harbour(tmp_path: Path, local_storage: Any, celery_worker_session: Any) -> Pack:
    """acme/harbour-pilot-notes-with-a-long-name: 1.0.0 and 1.1.0, both indexed; paid."""
    user, _, key = publisher("acme", "alice")
    name = "acme/harbour-pilot-notes-with-a-long-name"
    versions = [("1.0.0", V1, "First release."), ("1.1.0", V2, "Pilot boarding point moved.")]
    for version, memories, log in versions:
        work = tmp_path / version
        work.mkdir()
        published = pack_publish(
            actor=Actor(user=user, scopes=None),
            pack_file=build_pack(
                work,
                name=name,
                version=version,
                keys=[key],
                title="Harbour pilot's notes",
                license="CC-BY-4.0",
                description=CARD.format(changelog=log),
                keywords=["tides"],
                memories=memories,
            ),
            price=Price(900, "EUR"),
        )
        _ingested(published.pk)
    return published.pack


def _ingested(version_id: int) -> None:
    """Wait for the session's real Celery worker to ingest the version (it takes every
    publish; running the ingestion here as well would race it)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if IngestJob.objects.get(version_id=version_id).status == "done":
            return
        time.sleep(0.2)
    raise AssertionError(f"version {version_id} was not ingested within 240 s")


def test_pack_page_shows_the_sanitised_card_marked_previews_and_the_version_diff(
    page: Any, site: str, harbour: Pack
) -> None:
    page.goto(f"{site}/p/acme/{harbour.name}")
    assert page.title() != "pwned"  # the card's <script> never ran
    assert page.locator("article.readme strong", has_text="harbour office").count() == 1
    licence = page.locator(".licence a", has_text="CC-BY-4.0")
    assert licence.get_attribute("href") == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert page.locator(".msg.warning").count() == 0  # card and manifest agree on the licence
    facts = page.inner_text(".card-facts")
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in facts
    assert "No personal data; public tide tables only." in facts
    assert "no evaluation yet" in facts
    previews = page.locator(".preview").all_inner_texts()
    assert len(previews) == 2 and "three miles south" in previews[0]
    assert "VHF" not in " ".join(previews)  # not marked as a preview: not shown before purchase
    diff = page.inner_text(".diff")
    assert "Changes since v1.0.0" in diff
    assert "1 added" in diff and "1 changed" in diff and "1 removed" in diff
    assert "notes/m5" in diff and "notes/m3" in diff
    log = page.inner_text("#changelog-h + dl")
    assert log.index("Pilot boarding point moved.") < log.index("First release.")
    page.click("#changelog-h + dl a:has-text('1.0.0')")
    page.wait_for_url("**?v=1.0.0")
    assert page.locator(".diff").count() == 0
    assert "1.0.0" in page.inner_text("#install-cmd")


def test_phone_layout_keeps_the_install_name_whole_and_scrolls_tables(
    browser: Any, site: str, harbour: Pack
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{site}/p/acme/{harbour.name}")
        offenders = page.evaluate(STICKING_OUT, 360)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, offenders
        # The command is one line that scrolls inside its box: never broken inside the name.
        lines = page.evaluate(
            "(() => { const e = document.querySelector('#install-cmd');"
            " return Math.round(e.getBoundingClientRect().height /"
            " parseFloat(getComputedStyle(e).lineHeight)); })()"
        )
        assert lines == 1
        versions = page.locator("section[aria-labelledby=versions-h] .table-wrap")
        assert versions.evaluate("e => getComputedStyle(e).overflowX") == "auto"
        assert versions.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls, not clips
    finally:
        context.close()


def test_screenshots_of_home_search_and_pack_page_fit_desktop_and_phone(
    browser: Any, site: str, harbour: Pack
) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "home": "/",
        "search": "/search?q=pilot+boards",
        "pack": f"/p/acme/{harbour.name}",
    }
    for label, (width, height) in WIDTHS.items():
        context = browser.new_context(
            viewport={"width": width, "height": height}, is_mobile=label == "phone"
        )
        page = context.new_page()
        try:
            for name, path in pages.items():
                page.goto(f"{site}{path}")
                page.wait_for_load_state("networkidle")
                scroll, inner = page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )
                assert scroll <= inner, f"{path} overflows at {label} width ({scroll} > {inner})"
                shot = ARTEFACTS / f"{label}-{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 0
            if label == "desktop":
                page.goto(f"{site}/")
                main = page.evaluate(
                    "document.querySelector('main .wrap, main').getBoundingClientRect().width"
                )
                assert main > 0.75 * width  # content uses the window, not its left half
                assert page.locator("h2", has_text="Popular").count() == 0  # one pack: one list
        finally:
            context.close()
