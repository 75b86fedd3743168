"""Engine integration: the ActivationBackend, promotion, and generation with a plan or a source."""

from __future__ import annotations

from pathlib import Path

from runtime.engine.interfaces import ActivationBackend, LatencyProfile
from runtime.models.causal_lm import LoadedModel, greedy_generate
from runtime.models.engine_adapter import TransformersBackend
from runtime.models.generation import MemorySource, generate_with_memory, generate_with_plan
from runtime.models.kv import build_kv, prefix_segments, template_for

MEMORIES = ["alice likes green tea in the morning", "bob repairs old bicycles on sundays"]
FAST_KV = LatencyProfile(prefill_tokens_per_s=50.0, kv_load_bytes_per_s=1e12)


def test_backend_implements_the_engine_protocol(tiny_lm: LoadedModel, tmp_path: Path) -> None:
    backend = TransformersBackend(tiny_lm)
    assert isinstance(backend, ActivationBackend)
    assert backend.fingerprint() == tiny_lm.fingerprint
    assert backend.count_tokens("alice likes") == len(
        tiny_lm.encode("alice likes", add_special_tokens=False)
    )
    built = backend.build_kv(MEMORIES, tmp_path / "out")
    assert built.path.resolve().is_relative_to((tmp_path / "out").resolve())
    assert built.fingerprint == tiny_lm.fingerprint and built.token_count > 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["kv.safetensors"]


def test_latency_profile_is_measured_once(tiny_lm: LoadedModel) -> None:
    backend = TransformersBackend(tiny_lm)
    profile = backend.latency_profile()
    assert profile.prefill_tokens_per_s > 0 and profile.kv_load_bytes_per_s > 0
    assert profile.kv_fixed_overhead_s >= 0
    assert backend.latency_profile() is profile


def test_source_with_several_fitting_caches_composes_them(
    tiny_lm: LoadedModel, tmp_path: Path
) -> None:
    one = build_kv(tiny_lm, MEMORIES[:1], tmp_path / "1.safetensors").path
    two = build_kv(tiny_lm, MEMORIES[1:], tmp_path / "2.safetensors").path
    source = MemorySource(texts=tuple(MEMORIES), kv=((None, one), (None, two)))
    result = generate_with_memory(tiny_lm, source, "who", max_new_tokens=2, recompute=1.0)
    assert result.form == "activation" and "2 KV caches" in result.reason
    plain = generate_with_memory(tiny_lm, source, "who", mode="plaintext", max_new_tokens=2)
    # Full recompute: the same tokens as the plaintext prompt, without prefilling the memories.
    assert result.tokens == plain.tokens and result.cached_tokens > 0 == plain.cached_tokens
    bare = generate_with_memory(tiny_lm, source, "who", mode="none", max_new_tokens=2)
    assert bare.form == "none" and bare.prompt_tokens < result.prompt_tokens


def test_engine_promotes_hot_memory_and_plan_injects_its_cache(
    tiny_lm: LoadedModel, tmp_path: Path
) -> None:
    from runtime.engine.embedding import HashEmbedder
    from runtime.engine.engine import Engine
    from runtime.engine.scheduler import Budget, MemScheduler
    from runtime.engine.transform import TransformPolicy, promote_hot

    backend = TransformersBackend(tiny_lm, profile=FAST_KV)
    engine = Engine(tmp_path / "home", embedder=HashEmbedder(), maintain_every=None)
    try:
        hot = engine.add(MEMORIES[0])
        engine.add(MEMORIES[1])
        report = promote_hot(engine, backend, TransformPolicy(promote_after_uses=0))
        assert hot.id in report.promoted
        scheduler = MemScheduler(engine, backend)
        plan = scheduler.plan(
            "alice green tea bob bicycles", Budget(tokens=400, latency_s=60.0), dry_run=True
        )
        forms = {i.memory.id: i.form for i in plan.items}
        assert "activation" in forms.values(), plan.to_dict()
        result = generate_with_plan(
            tiny_lm, plan, "what does alice like", max_new_tokens=6, recompute=1.0
        )
    finally:
        engine.close()
    assert result.form == "activation" and result.cached_tokens > 0
    # The same prompt, all prefilled as plaintext, gives the same greedy tokens: the plan's
    # caches composed behind one header, fully recomputed, then the plaintext and the query.
    kv_texts = [i.memory.text for i in plan.items if i.form == "activation"]
    rest = [i.memory.text for i in plan.items if i.form == "plaintext"]
    tpl = template_for(tiny_lm, None)
    segments = [prefix_segments(tiny_lm, tpl, [t]) for t in kv_texts]
    ids = [*segments[0][0], *(i for seg in segments for i in seg[1]), *segments[0][2]]
    ids += tiny_lm.encode(tpl.more(rest), add_special_tokens=False) if rest else []
    ids += tiny_lm.encode(tpl.query_text("what does alice like"), add_special_tokens=False)
    assert greedy_generate(tiny_lm, ids, max_new_tokens=6).tokens == result.tokens


def test_plan_cache_for_another_model_falls_back_to_plaintext(
    tiny_lm: LoadedModel, other_lm: LoadedModel, tmp_path: Path
) -> None:
    from dataclasses import dataclass, field

    @dataclass
    class FakeMemory:
        id: str
        text: str
        memory_type: str = "plaintext"
        fingerprint: object = None
        payloads: dict[str, str] = field(default_factory=dict)

    @dataclass
    class FakeItem:
        memory: FakeMemory
        form: str
        payload: str | None = None

    @dataclass
    class FakePlan:
        query: str
        items: list[FakeItem]

    path = build_kv(other_lm, MEMORIES[:1], tmp_path / "kv.safetensors").path
    plan = FakePlan("who", [FakeItem(FakeMemory("m1", MEMORIES[0]), "activation", str(path))])
    result = generate_with_plan(tiny_lm, plan, max_new_tokens=3)
    assert result.form == "plaintext"
    assert any(note.startswith("KV cache of m1 not used") for note in result.notes)
    assert "m1 injected as plaintext instead" in result.notes
