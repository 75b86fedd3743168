"""Two ``memos install`` processes at once on the same MEMOS_HOME both finish correctly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from memos_cli import MEMOS, memos

from protocol import SigningKey
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import build_pack, lora_cube


def test_two_installs_at_once(
    tmp_path: Path, registry: FakeRegistry, key: SigningKey, env: dict[str, str]
) -> None:
    for name in ("acme/one", "acme/two"):
        registry.publish(
            build_pack(
                tmp_path,
                name=name,
                keys=[key],
                memories=[f"{name} memory {i}" for i in range(50)],
                extra_cubes=[lora_cube(floats=100_000, seed=len(name))],
            )
        )
    registry.throttle_bytes_per_s = 1_000_000  # both downloads overlap
    # Same pack twice (same blob: one waits for the other's lock) and two different packs.
    jobs = [
        ["install", "acme/one", "acme/two", "--json", "-q"],
        ["install", "acme/two", "acme/one", "--json", "-q"],
    ]
    procs = [
        subprocess.Popen(
            [*MEMOS, *args],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in jobs
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (stdout, stderr) in zip(procs, outs, strict=True):
        assert p.returncode == 0, stderr
        assert {r["name"] for r in json.loads(stdout)} == {"acme/one", "acme/two"}
    installed = json.loads(memos(["list", "--json"], env, tmp_path).stdout)
    assert [(p["name"], p["memories"]) for p in installed] == [("acme/one", 51), ("acme/two", 51)]
    hits = json.loads(
        memos(["search", "acme/one memory 7", "--json", "-k", "50"], env, tmp_path).stdout
    )
    assert len({h["id"] for h in hits}) == len(hits)
    lock = json.loads((tmp_path / "memos.lock").read_text())
    assert sorted(lock["packs"]) == ["acme/one", "acme/two"]
    assert memos(["audit", "--verify"], env, tmp_path).returncode == 0
    partial = Path(env["MEMOS_HOME"]) / "cache" / "partial"
    assert list(partial.iterdir()) == []
