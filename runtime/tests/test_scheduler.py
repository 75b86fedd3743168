from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from protocol import AccessPolicy
from runtime.engine.engine import Engine, NewMemory
from runtime.engine.interfaces import ActivationBackend, LatencyProfile
from runtime.engine.lifecycle import State
from runtime.engine.scheduler import Budget, MemScheduler
from runtime.engine.transform import TransformPolicy, demote_cold, promote_hot
from runtime.tests.fakes import FakeBackend, fingerprint
from runtime.tests.helpers import FixedClock


def test_fake_backend_implements_the_protocol() -> None:
    assert isinstance(FakeBackend(), ActivationBackend)


def test_plan_fits_token_budget_and_explains_rejections(engine: Engine) -> None:
    short = engine.add("cargo clippy finds common rust mistakes")
    long = engine.add("rust " + "word " * 200)
    plan = MemScheduler(engine).plan("rust clippy", Budget(tokens=40))
    assert [i.memory.id for i in plan.items] == [short.id]
    assert plan.tokens_used <= 40
    (rej,) = [r for r in plan.rejected if r.memory_id == long.id]
    assert rej.code == "plan.token_budget"
    assert "left of 40" in rej.reason or "of 40 left" in rej.reason
    assert all(i.reason for i in plan.items)


def test_plan_enforces_access_policy_with_reason(engine: Engine) -> None:
    engine.add("payroll numbers for march", access=AccessPolicy("restricted", ("hr-bot",)))
    plan = MemScheduler(engine).plan("payroll march", 100, principal="sales-bot")
    assert plan.items == ()
    assert plan.rejected[0].code == "access.denied"
    assert "sales-bot" in plan.rejected[0].reason
    ok = MemScheduler(engine).plan("payroll march", 100, principal="hr-bot")
    assert len(ok.items) == 1


def test_plan_prefers_priority_and_recency(engine: Engine, clock: FixedClock) -> None:
    low = engine.add("deploy checklist item", priority=0.1)
    high = engine.add("deploy checklist item!", priority=0.9)
    plan = MemScheduler(engine).plan("deploy checklist", 1000, dry_run=True)
    ids = [i.memory.id for i in plan.items]
    assert ids.index(high.id) < ids.index(low.id)


def test_executed_plan_updates_use_and_dry_run_does_not(engine: Engine) -> None:
    m = engine.add("the staging database is on port 5433")
    MemScheduler(engine).plan("staging database port", 100, dry_run=True)
    assert engine.get(m.id, record=False).access_count == 0
    MemScheduler(engine).plan("staging database port", 100, principal="agent")
    after = engine.get(m.id, record=False)
    assert after.access_count == 1
    assert after.state is State.ACTIVATED
    assert engine.audit_log(action="plan")[-1].actor == "agent"


def _cube(engine: Engine, kind: str, fp_config: str, tokens: int | None = None) -> str:
    (mid,) = engine.add_many(
        [
            NewMemory(
                text=f"{kind} cube for rust tips",
                id=f"acme/tips/{kind}-{fp_config[:3]}",
                memory_type=kind,
                pack="acme/tips",
                fingerprint=fingerprint(fp_config),
                token_count=tokens,
            )
        ]
    )
    return mid


def test_plan_uses_kv_and_adapter_only_for_the_running_model(engine: Engine) -> None:
    engine.add_many(
        [NewMemory(text="rust tips: prefer iterators", id="acme/tips/notes/m1", pack="acme/tips")]
    )
    kv_ok = _cube(engine, "activation", "a" * 64, tokens=30)
    kv_bad = _cube(engine, "activation", "c" * 64, tokens=30)
    lora_ok = _cube(engine, "parameter", "a" * 64)
    lora_bad = _cube(engine, "parameter", "c" * 64)
    plan = MemScheduler(engine, FakeBackend()).plan("rust tips", Budget(tokens=200))
    forms = {i.memory.id: i.form for i in plan.items}
    assert forms[kv_ok] == "activation"
    assert forms[lora_ok] == "parameter"
    rejected = {r.memory_id: r for r in plan.rejected}
    assert rejected[kv_bad].code == "plan.model_mismatch"
    assert "config_sha256" in rejected[kv_bad].reason
    assert rejected[lora_bad].code == "plan.model_mismatch"


def test_plan_without_model_rejects_kv_and_adapters(engine: Engine) -> None:
    engine.add_many([NewMemory(text="rust tips", id="acme/tips/notes/m1", pack="acme/tips")])
    kv = _cube(engine, "activation", "a" * 64, tokens=10)
    plan = MemScheduler(engine).plan("rust tips", 200)
    assert {r.memory_id: r.code for r in plan.rejected}[kv] == "plan.model_mismatch"


def test_dynamic_transformation_promotes_hot_and_demotes_cold(
    engine: Engine, clock: FixedClock, home: Path
) -> None:
    hot = engine.add("the build server is called jenkins-7 and lives in rack 4")
    cold = engine.add("rarely needed fact about the office plants")
    backend = FakeBackend(
        profile=LatencyProfile(prefill_tokens_per_s=100.0, kv_load_bytes_per_s=1e9)
    )
    for _ in range(3):
        engine.search("build server jenkins", k=1)
    report = promote_hot(engine, backend, TransformPolicy(promote_after_uses=3))
    assert report.promoted == [hot.id]
    assert cold.id not in report.promoted
    # With a latency budget the plan uses the KV cache, and says why.
    plan = MemScheduler(engine, backend).plan(
        "build server jenkins", Budget(tokens=100, latency_s=1.0)
    )
    item = next(i for i in plan.items if i.memory.id == hot.id)
    assert item.form == "activation"
    assert "KV cache" in item.reason and "prefill" in item.reason
    # Without a latency budget, plaintext, and the reason says so.
    plan = MemScheduler(engine, backend).plan(
        "build server jenkins", Budget(tokens=100), dry_run=True
    )
    item = next(i for i in plan.items if i.memory.id == hot.id)
    assert item.form == "plaintext"
    assert "no latency budget" in item.reason
    # Cold caches are demoted: file freed, plaintext kept.
    blob = Path(item.payload) if item.payload else None
    assert blob is None
    row = engine.store.db.execute("SELECT sha256 FROM kv_caches").fetchone()
    from runtime.cache import BlobCache

    cache = BlobCache(home)
    assert cache.has(row[0])
    clock.advance(days=8)
    demoted = demote_cold(engine, TransformPolicy(demote_after=timedelta(days=7)))
    assert demoted.demoted == [hot.id]
    assert not cache.has(row[0])
    assert engine.get(hot.id, record=False).text.startswith("the build server")


def test_plan_uses_plaintext_when_prefill_is_faster(engine: Engine) -> None:
    hot = engine.add("short fact")
    backend = FakeBackend(
        profile=LatencyProfile(prefill_tokens_per_s=1e6, kv_load_bytes_per_s=10.0)
    )
    engine.search("short fact")
    promote_hot(engine, backend, TransformPolicy(promote_after_uses=1))
    plan = MemScheduler(engine, backend).plan("short fact", Budget(tokens=100, latency_s=100.0))
    item = next(i for i in plan.items if i.memory.id == hot.id)
    assert item.form == "plaintext"
    assert "not slower" in item.reason


def test_latency_budget_rejects_what_does_not_fit(engine: Engine) -> None:
    engine.add("alpha " * 50)
    backend = FakeBackend(
        profile=LatencyProfile(prefill_tokens_per_s=10.0, kv_load_bytes_per_s=1e9)
    )
    plan = MemScheduler(engine, backend).plan("alpha", Budget(tokens=1000, latency_s=0.5))
    assert plan.items == ()
    assert plan.rejected[0].code == "plan.latency_budget"


def test_promotion_refuses_a_pickle(engine: Engine) -> None:
    m = engine.add("hot memory")
    engine.search("hot memory")
    backend = FakeBackend(pickle_instead=True)
    report = promote_hot(engine, backend, TransformPolicy(promote_after_uses=1))
    assert report.promoted == []
    assert report.skipped[0]["memory"] == m.id
    assert "payload.pickle_forbidden" in report.skipped[0]["reason"]
    assert engine.store.db.execute("SELECT COUNT(*) FROM kv_caches").fetchone()[0] == 0


def test_scheduled_maintenance_demotes_cold_caches(engine: Engine, clock: FixedClock) -> None:
    hot = engine.add("frequently asked question about vpn setup")
    engine.search("vpn setup")
    promote_hot(engine, FakeBackend(), TransformPolicy(promote_after_uses=1))
    assert engine.maintain().demoted == []
    clock.advance(days=8)
    assert engine.maintain().demoted == [hot.id]
    assert engine.store.db.execute("SELECT COUNT(*) FROM kv_caches").fetchone()[0] == 0


def test_plan_composes_several_caches_with_offsets_and_recompute_cost(engine: Engine) -> None:
    engine.add_many(
        [NewMemory(text="rust tips: prefer iterators", id="acme/tips/notes/m1", pack="acme/tips")]
    )
    for n, tokens in enumerate((30, 20, 10)):
        engine.add_many([NewMemory(
            text=f"activation cube {n} for rust tips", id=f"acme/tips/kv-{n}",
            memory_type="activation", pack="acme/tips", fingerprint=fingerprint("a" * 64),
            token_count=tokens, priority=0.9 - n / 10,
        )])  # fmt: skip
    budget = Budget(tokens=200, recompute=0.2)
    plan = MemScheduler(engine, FakeBackend()).plan("rust tips", budget, dry_run=True)
    caches = [i for i in plan.items if i.form == "activation"]
    assert [c.memory.id for c in caches] == [f"acme/tips/kv-{n}" for n in range(3)]
    assert [(c.offset, c.recompute_tokens) for c in caches] == [(0, 0), (30, 4), (50, 2)]
    assert "exact" in caches[0].reason and "recomputes 4 tokens" in caches[1].reason
    listed = [i for i in plan.to_dict()["items"] if i["form"] == "activation"]
    assert [i["offset"] for i in listed] == [0, 30, 50]
    two = MemScheduler(engine, FakeBackend()).plan(
        "rust tips", Budget(tokens=200, max_kv_caches=2), dry_run=True
    )
    assert {r.memory_id: r.code for r in two.rejected}["acme/tips/kv-2"] == "plan.kv_combine"


def test_scheduler_default_recompute_is_the_runtimes() -> None:
    import pytest

    kv_compose = pytest.importorskip("runtime.models.kv_compose")
    from runtime.engine.scheduler import DEFAULT_KV_RECOMPUTE

    assert DEFAULT_KV_RECOMPUTE == kv_compose.DEFAULT_RECOMPUTE
