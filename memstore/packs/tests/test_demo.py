"""The demo marketplace: real docstring text, the model-pack cache, idempotent seeding.

The real SmolLM2 builds run in tests/browser/test_screenshots.py (small, cached); here the
builder is a stand-in that writes a plaintext source, so these tests load no model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memstore.packs.cards import card_parse
from memstore.packs.demo import demo_publisher, publish_model_pack, seed_demo
from memstore.packs.demo_catalogue import model_packs, plaintext_packs
from memstore.packs.demo_corpus import django_memories, stdlib_memories
from memstore.packs.demo_models import ModelPackBuild, cache_key, cached_model_pack_source
from memstore.packs.models import PackVersion
from memstore.testing.packs import write_pack_source


def test_the_corpus_is_hundreds_of_readable_sentences_with_unique_ids() -> None:
    stdlib, dj = stdlib_memories(500), django_memories(300)
    assert len(stdlib) >= 300 and len(dj) >= 200
    for memory in stdlib + dj:
        name, _, summary = memory["text"].partition(": ")
        assert summary[0].isupper() and summary.endswith("."), memory
        assert memory["id"].endswith(name)
    assert len({m["id"] for m in stdlib + dj}) == len(stdlib) + len(dj)
    assert stdlib == stdlib_memories(500)  # the same on every start: it can key a cache
    assert any(m["id"] == "py.json.dumps" for m in stdlib)


def test_every_card_parses_and_names_the_licence_of_its_text() -> None:
    for demo in plaintext_packs()[:2]:
        card = card_parse(demo.description)
        assert card.license == demo.license and not card.problems
        assert "Source" in card.body
        for question in demo.questions:  # answers exist in this very build
            assert set(question["answers"]) <= {m["id"] for m in demo.memories}  # type: ignore[index]
        assert len(demo.questions) >= 5
    for model_pack in model_packs():
        card = card_parse(model_pack.description)
        assert card.base_models == ("HuggingFaceTB/SmolLM2-135M-Instruct",)
        assert card.preview and set(card.preview) <= {m["id"] for m in model_pack.build.memories}


def test_model_pack_budget_bounds_the_memories() -> None:
    small = model_packs(kv_chars=300, lora_memories=3, lora_steps=2)
    kv, lora = (p.build for p in small)
    assert kv.kind == "kv" and 1 <= len(kv.memories) <= 4
    assert sum(len(m["text"]) for m in kv.memories[:-1]) <= 300
    assert lora.kind == "lora" and len(lora.memories) == 3 and lora.lora_steps == 2
    assert cache_key(kv) != cache_key(model_packs()[0].build)


def _fake_builder(calls: list[str]) -> Any:
    def build(build: ModelPackBuild, out: Path, progress: Any) -> dict[str, Any]:
        calls.append(build.name)
        write_pack_source(out, name=build.name, memories=[dict(m) for m in build.memories])
        return {"fingerprint_digest": "fake"}

    return build


def test_a_model_pack_is_built_once_per_key(tmp_path: Path) -> None:
    build = ModelPackBuild(kind="kv", name="demo/x", memories=({"id": "m1", "text": "One."},))
    calls: list[str] = []
    first = cached_model_pack_source(build, tmp_path, builder=_fake_builder(calls))
    again = cached_model_pack_source(build, tmp_path, builder=_fake_builder(calls))
    assert first == again and calls == ["demo/x"]
    assert json.loads((first / "BUILT.json").read_text())["key"] == cache_key(build)
    kept = ModelPackBuild(kind="kv", name="demo/y", memories=build.memories)
    kept_path = cached_model_pack_source(kept, tmp_path, builder=_fake_builder(calls))
    other = ModelPackBuild(kind="kv", name="demo/x", memories=({"id": "m1", "text": "Two."},))
    assert cached_model_pack_source(other, tmp_path, builder=_fake_builder(calls)) != first
    assert calls == ["demo/x", "demo/y", "demo/x"]
    assert not first.exists() and kept_path.exists()  # the older build of demo/x is gone
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


@pytest.mark.django_db
def test_seeding_publishes_the_catalogue_once_with_cards_and_questions(
    tmp_path: Path, local_storage: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    first = seed_demo(tmp_path / "demo", progress=lines.append, with_models=False)
    assert "demo/python-stdlib@1.0.0" in first.published and not first.existing
    assert any("memories)" in line for line in lines)
    version = PackVersion.objects.get(pack__name="python-stdlib")
    assert version.manifest["license"] == "PSF-2.0"
    assert len(version.manifest["evaluation"]["questions"]) >= 5
    assert card_parse(version.manifest["description"]).tags == ("python", "stdlib", "reference")
    again = seed_demo(tmp_path / "demo", with_models=False)
    assert again.published == [] and set(again.existing) == set(first.published)
    assert again.password == first.password


@pytest.mark.django_db
def test_a_model_pack_is_published_with_the_catalogue_card_from_the_cache(
    tmp_path: Path, local_storage: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor, key, _ = demo_publisher(tmp_path / "demo")
    calls: list[str] = []
    monkeypatch.setattr(
        "memstore.packs.demo.cached_model_pack_source",
        lambda build, cache, progress: cached_model_pack_source(
            build, cache, builder=_fake_builder(calls)
        ),
    )
    kv = model_packs(kv_chars=200)[0]
    work = tmp_path / "work"
    work.mkdir()
    version = publish_model_pack(
        actor=actor, key=key, demo=kv, cache_dir=tmp_path / "cache", workdir=work
    )
    assert calls == [kv.build.name]
    assert version.manifest["title"] == kv.title
    assert card_parse(version.manifest["description"]).base_models
    cached = next((tmp_path / "cache").iterdir())
    assert json.loads((cached / "manifest.json").read_text())["title"] != kv.title  # untouched
