"""Killing ``memos install`` mid-download and running it again resumes and ends verified."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from memos_cli import MEMOS, memos

from protocol import SigningKey
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import build_pack, lora_cube


def test_killed_install_resumes_with_range_and_verifies(
    tmp_path: Path, registry: FakeRegistry, key: SigningKey, env: dict[str, str]
) -> None:
    pack = build_pack(
        tmp_path,
        name="acme/big",
        keys=[key],
        memories=["a big pack"],
        extra_cubes=[lora_cube(floats=400_000)],
    )
    pub = registry.publish(pack)
    registry.throttle_bytes_per_s = 300_000  # ~5 s for the whole pack: the kill lands mid-download
    partial = Path(env["MEMOS_HOME"]) / "cache" / "partial" / f"{pub.sha256}.part"
    proc = subprocess.Popen(
        [*MEMOS, "install", "acme/big", "--quiet"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if partial.exists() and partial.stat().st_size > 200_000:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    kept = partial.stat().st_size
    assert 200_000 <= kept < pub.size
    assert json.loads(memos(["list", "--json"], env, tmp_path).stdout) == []

    registry.throttle_bytes_per_s = None
    registry.requests.clear()
    out = memos(["install", "acme/big", "--json"], env, tmp_path)
    (result,) = json.loads(out.stdout)
    assert (result["name"], result["sha256"]) == ("acme/big", pub.sha256)
    ranges = [r for _, path, r in registry.requests if "/blobs/" in path]
    assert len(ranges) == 1
    assert ranges[0] is not None
    assert int(ranges[0].removeprefix("bytes=").rstrip("-")) >= kept
    assert not partial.exists()
    blob = Path(env["MEMOS_HOME"]) / "cache" / "blobs" / "sha256" / pub.sha256[:2] / pub.sha256
    assert blob.read_bytes() == pack.read_bytes()
    assert (
        json.loads(memos(["search", "big pack", "--json"], env, tmp_path).stdout)[0]["pack"]
        == "acme/big"
    )
