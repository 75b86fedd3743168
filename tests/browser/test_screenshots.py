"""Full-page screenshots of the demo marketplace, all three memory types, desktop and phone.

The packs are the ones ``manage.py memstore_up`` publishes, made by the same functions
(``memstore.packs.demo``): the docstring pack, and the SmolLM2 KV-cache and LoRA packs built
with the real model, small (a few memories, a few LoRA steps) and once: the session fixture
caches their payloads under ``var/test-cache/`` by the same key as the demo (inputs and
model identity), so only a session after a change loads SmolLM2. Screenshots of home,
search and both model pack pages at 1280 and 390 px go to ``var/test-artefacts/screenshots/``;
at each width neither the page nor any element may reach past the viewport's right edge
(inside a box that scrolls or clips on purpose, such as a wide table, it may).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from memstore.ingest.models import IngestJob
from memstore.packs.demo import demo_publisher, publish_model_pack, publish_plaintext_pack
from memstore.packs.demo_catalogue import DemoModelPack, model_packs, plaintext_packs
from memstore.packs.demo_models import cached_model_pack_source

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "var" / "test-cache" / "demo-model-packs"
ARTEFACTS = REPO / "var" / "test-artefacts" / "screenshots"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}

# Elements reaching past the right edge, unless a scrolling or clipping ancestor holds them.
OVERFLOWING = """() => {
  const width = window.innerWidth;
  const held = e => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX)) {
        return true;
      }
    }
    return false;
  };
  return [...document.querySelectorAll('body *')]
    .filter(e => {
      const r = e.getBoundingClientRect();
      return (r.right > width + 1 || r.width > width + 1) && !held(e);
    })
    .slice(0, 12)
    .map(e => `${e.tagName.toLowerCase()}.${e.className} right=${
      Math.round(e.getBoundingClientRect().right)}px`);
}"""


@pytest.fixture(scope="session")
def small_model_packs() -> tuple[DemoModelPack, ...]:
    """The demo's KV and LoRA packs, small, their payloads built (once, cached) with SmolLM2."""
    packs = model_packs(kv_chars=400, lora_memories=4, lora_steps=4)
    for pack in packs:
        cached_model_pack_source(pack.build, CACHE)
    return packs


def _ingested(version_id: int) -> None:
    """Wait for the session's Celery worker to ingest (test_pack_pages: never ingest here too)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if IngestJob.objects.get(version_id=version_id).status == "done":
            return
        time.sleep(0.2)
    raise AssertionError(f"version {version_id} was not ingested within 240 s")


@pytest.fixture
def demo_market(
    tmp_path: Path,
    local_storage: Any,
    celery_worker_session: Any,
    small_model_packs: tuple[DemoModelPack, ...],
) -> dict[str, str]:
    """The demo account with a docstring pack (its first 40 memories) and the two model packs."""
    actor, key, _ = demo_publisher(tmp_path / "demo")
    stdlib = plaintext_packs()[0]
    versions = [
        publish_plaintext_pack(
            actor=actor,
            key=key,
            demo=replace(stdlib, memories=stdlib.memories[:40], questions=()),
            workdir=tmp_path,
        )
    ]
    for pack in small_model_packs:
        versions.append(
            publish_model_pack(actor=actor, key=key, demo=pack, cache_dir=CACHE, workdir=tmp_path)
        )
    for version in versions:
        _ingested(version.pk)
    kv, lora = (p.build.name for p in small_model_packs)
    return {
        "home": "/",
        "search": "/search?q=serialize+json",
        "kv-pack": f"/p/{kv}",
        "lora-pack": f"/p/{lora}",
    }


def test_screenshots_of_home_search_kv_and_lora_pages_fit_desktop_and_phone(
    browser: Any, site: str, demo_market: dict[str, str]
) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        context = browser.new_context(
            viewport={"width": width, "height": height}, is_mobile=label == "phone"
        )
        page = context.new_page()
        try:
            for name, path in demo_market.items():
                response = page.goto(f"{site}{path}")
                assert response is not None and response.status == 200, path
                page.wait_for_load_state("networkidle")
                if name == "home":  # a card's summary is its body, not its front matter
                    summaries = " ".join(page.locator(".card .summary").all_inner_texts())
                    assert "activation memory" in summaries.lower()
                    assert "license:" not in summaries
                if name == "kv-pack":
                    assert "activation" in page.inner_text("section[aria-labelledby=cubes-h]")
                if name == "lora-pack":
                    assert "parameter" in page.inner_text("section[aria-labelledby=cubes-h]")
                shot = ARTEFACTS / f"{label}-{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 0
                scroll, inner = page.evaluate(
                    "[document.scrollingElement.scrollWidth, window.innerWidth]"
                )
                offenders = page.evaluate(OVERFLOWING)
                assert scroll <= inner, f"{path} overflows at {width} px: {scroll} > {inner}"
                assert offenders == [], f"{path} at {width} px: {offenders}"
        finally:
            context.close()
