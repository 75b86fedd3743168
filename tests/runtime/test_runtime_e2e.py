"""A new user installs a pack by name, searches it, watches a memory's lifecycle, rolls it back,
and sees who read what in the audit log — all through the real CLI against a real HTTP registry."""

from __future__ import annotations

import json
from pathlib import Path

from memos_cli import memos

from protocol import SigningKey
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import build_pack, lora_cube


def test_new_user_flow(
    tmp_path: Path, registry: FakeRegistry, key: SigningKey, env: dict[str, str]
) -> None:
    registry.publish(
        build_pack(
            tmp_path,
            name="acme/rust-tips",
            version="1.0.0",
            keys=[key],
            memories=[
                "Run cargo clippy before every commit",
                "Prefer iterators to index loops",
                "Use Arc<Mutex<T>> to share state between threads",
            ],
            extra_cubes=[lora_cube()],
        )
    )
    registry.publish(
        build_pack(
            tmp_path,
            name="acme/rust-tips",
            version="1.1.0",
            keys=[key],
            memories=[
                "Run cargo clippy before every commit",
                "Prefer iterators to index loops",
                "Use Arc<Mutex<T>> to share state between threads",
                "Derive Debug on public types",
            ],
        )
    )
    work = tmp_path / "project"
    work.mkdir()

    out = memos(["install", "acme/rust-tips@~1.0", "--json"], env, work)
    (installed,) = json.loads(out.stdout)
    assert (installed["name"], installed["version"], installed["memories"]) == (
        "acme/rust-tips",
        "1.0.0",
        4,
    )
    lock = json.loads((work / "memos.lock").read_text())
    assert lock["packs"]["acme/rust-tips"]["version"] == "1.0.0"

    hits = json.loads(
        memos(
            ["search", "share state between threads", "--json", "--as", "agent-7"], env, work
        ).stdout
    )
    mid = hits[0]["id"]
    assert mid == "acme/rust-tips/notes/m3"
    assert hits[0]["state"] == "generated"

    # Lifecycle: used -> activated; archived; illegal restore of an activated memory is refused.
    show = json.loads(memos(["show", mid, "--json"], env, work).stdout)
    assert show["state"] == "activated"
    memos(["lifecycle", mid, "archive"], env, work)
    bad = memos(["lifecycle", mid, "activate"], env, work, check=False)
    assert bad.returncode == 1
    assert "lifecycle.illegal_transition" in bad.stderr
    history = json.loads(memos(["history", mid, "--json"], env, work).stdout)
    # A use activates in place (audited as a transition): reads never add a version.
    assert [(v["version"], v["event"], v["snapshot"]["state"]) for v in history] == [
        (1, "install", "generated"),
        (2, "archive", "archived"),
    ]

    # Time machine: as of version 1's time it was as installed; roll back to version 1
    # (exactly one new version).
    assert (
        json.loads(memos(["show", mid, "--as-of", history[0]["at"], "--json"], env, work).stdout)[
            "state"
        ]
        == "generated"
    )
    rolled = json.loads(memos(["rollback", mid, "1", "--json"], env, work).stdout)
    assert (rolled["state"], rolled["version"]) == ("generated", 3)

    # A plan for the agent: plaintext within budget, adapter rejected without a running
    # model, reasons given.
    plan = json.loads(
        memos(
            ["plan", "clippy commits", "--budget", "20", "--json", "--as", "agent-7"], env, work
        ).stdout
    )
    assert plan["items"][0]["memory_id"] == "acme/rust-tips/notes/m1"
    assert any(r["code"] == "plan.model_mismatch" for r in plan["rejected"])
    assert all(i["reason"] for i in plan["items"]) and all(r["reason"] for r in plan["rejected"])

    # Upgrade to the newest version, then reproduce the lock elsewhere.
    memos(["upgrade", "acme/rust-tips"], env, work)
    assert json.loads(memos(["list", "--json"], env, work).stdout)[0]["version"] == "1.1.0"

    # Audit: the install, who read what, transitions, the rollback.
    audit = json.loads(memos(["audit", "--json", "--limit", "200"], env, work).stdout)
    actions = [e["action"] for e in audit]
    assert {"install", "search", "transition", "rollback", "plan"} <= set(actions)
    reads = [e for e in audit if e["action"] == "search" and e["actor"] == "agent-7"]
    assert mid in reads[0]["detail"]["memories"]
    assert memos(["audit", "--verify"], env, work).returncode == 0

    other = dict(env, MEMOS_HOME=str(tmp_path / "home2"))
    lock_copy = tmp_path / "elsewhere"
    lock_copy.mkdir()
    (lock_copy / "memos.lock").write_text((work / "memos.lock").read_text())
    result = json.loads(memos(["install", "--locked", "--json"], other, lock_copy).stdout)
    assert result[0]["version"] == "1.1.0"
    assert (
        result[0]["sha256"]
        == json.loads((work / "memos.lock").read_text())["packs"]["acme/rust-tips"]["sha256"]
    )
