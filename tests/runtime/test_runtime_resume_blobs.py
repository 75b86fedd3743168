"""Blob by blob: killing ``memos install`` (SIGKILL) and rerunning resumes each blob; verify heals.

Against the fake registry with per-blob URLs (``blob_urls``), as a MIP 2
registry serves them: every blob is fetched on its own connection, several at
once, each into its own ``.part`` file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from memos_cli import MEMOS, memos

from protocol import SigningKey, read_pack
from runtime.download_segments import pieces
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import build_pack, lora_cube


def _partials(env: dict[str, str]) -> dict[str, int]:
    folder = Path(env["MEMOS_HOME"]) / "cache" / "partial"
    if not folder.is_dir():
        return {}
    return {p.name.removesuffix(".part"): p.stat().st_size for p in folder.glob("*.part")}


def _kill_mid_download(env: dict[str, str], cwd: Path, at_least: int) -> dict[str, int]:
    proc = subprocess.Popen(
        [*MEMOS, "install", "acme/big", "--quiet"], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sum(_partials(env).values()) >= at_least:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    return _partials(env)


def test_killed_install_resumes_per_blob_and_ends_verified(
    tmp_path: Path, registry: FakeRegistry, key: SigningKey, env: dict[str, str]
) -> None:
    pack = build_pack(
        tmp_path, name="acme/big", keys=[key], memories=["a big pack"],
        extra_cubes=[lora_cube(f"adapter{i}", floats=300_000, seed=i) for i in range(3)],
    )  # fmt: skip
    registry.blob_urls = True
    registry.publish(pack)
    sizes = {r.sha256: r.size for c in read_pack(pack).manifest.cubes for r in c.payloads}
    registry.throttle_bytes_per_s = 250_000  # per connection: the kills land mid-download

    first = _kill_mid_download(env, tmp_path, at_least=300_000)
    assert first and all(0 < n < sizes[d] for d, n in first.items())
    assert json.loads(memos(["list", "--json"], env, tmp_path).stdout) == []
    second = _kill_mid_download(env, tmp_path, at_least=sum(first.values()) + 300_000)
    for digest, kept in first.items():  # each partial grew from where it was, or completed
        assert second.get(digest, sizes[digest]) >= kept

    registry.throttle_bytes_per_s = None
    registry.requests.clear()
    registry.blob_bytes.clear()
    cache = Path(env["MEMOS_HOME"]) / "cache" / "blobs" / "sha256"
    done_before = {d for d in sizes if (cache / d[:2] / d).is_file()}
    (result,) = json.loads(memos(["install", "acme/big", "--json"], env, tmp_path).stdout)
    assert result["name"] == "acme/big"
    ranges = {p.rsplit("/", 1)[-1]: r for _, p, r in registry.requests if "/blobs/sha256/" in p}
    assert not done_before & set(ranges)  # blobs already complete are not fetched again
    for digest, kept in second.items():
        assert ranges[digest] is not None
        assert int(ranges[digest].removeprefix("bytes=").rstrip("-")) == kept
        assert registry.blob_bytes[digest] == sizes[digest] - kept
    assert _partials(env) == {}
    assert not [p for _, p, _ in registry.requests if "/blobs/" in p and "/sha256/" not in p]
    verified = memos(["verify", "--installed", "--json"], env, tmp_path)
    assert json.loads(verified.stdout)["ok"] is True
    hits = json.loads(memos(["search", "big pack", "--json"], env, tmp_path).stdout)
    assert hits[0]["pack"] == "acme/big"


def test_verify_installed_names_a_tampered_blob_and_reinstall_heals_it(
    tmp_path: Path, registry: FakeRegistry, key: SigningKey, env: dict[str, str]
) -> None:
    pack = build_pack(tmp_path, name="acme/tips", keys=[key], memories=["tip"],
                      extra_cubes=[lora_cube()])  # fmt: skip
    registry.blob_urls = True
    registry.publish(pack)
    memos(["install", "acme/tips", "-q"], env, tmp_path)
    weights = read_pack(pack).manifest.cube("adapter").payloads[1].sha256
    blob = Path(env["MEMOS_HOME"]) / "cache" / "blobs" / "sha256" / weights[:2] / weights
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")

    bad = memos(["verify", "--installed", "acme/tips", "--json"], env, tmp_path, check=False)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert [(p["pack"], p["sha256"], p["code"]) for p in report["problems"]] == [
        ("acme/tips", weights, "cache.blob_corrupt")
    ]
    assert "[cache.blob_corrupt]" in bad.stderr
    human = memos(["verify", "--installed"], env, tmp_path, check=False)
    assert human.returncode == 1 and weights in human.stdout

    memos(["install", "acme/tips", "-q"], env, tmp_path)
    assert memos(["verify", "--installed"], env, tmp_path).returncode == 0


def test_killed_upgrade_of_one_large_blob_resumes_each_range(
    tmp_path: Path, registry: FakeRegistry, key: SigningKey, env: dict[str, str]
) -> None:
    """One changed 36 MB blob is fetched as 8 MiB pieces by four streams at once; SIGKILL;
    the rerun asks only for what the progress record does not cover, and ends verified."""
    registry.blob_urls = True
    for version, seed in (("1.0.0", 1), ("1.1.0", 2)):
        registry.publish(build_pack(
            tmp_path, name="acme/big", version=version, keys=[key], memories=["a big pack"],
            extra_cubes=[lora_cube("adapter", floats=9_000_000, seed=seed)],
        ))  # fmt: skip
    memos(["install", "acme/big@1.0.0", "--quiet"], env, tmp_path)
    manifest = read_pack(registry.packs["acme/big"][1].path).manifest
    weights = manifest.cube("adapter").payloads[1]
    partial = Path(env["MEMOS_HOME"]) / "cache" / "partial" / f"{weights.sha256}.part"
    record = partial.with_name(partial.name + ".segments")

    registry.throttle_bytes_per_s = 2_000_000  # per connection: the kill lands mid-range
    proc = subprocess.Popen(
        [*MEMOS, "upgrade", "acme/big"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not record.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    kept = json.loads(record.read_text())
    done = sum(kept["done"])
    assert [tuple(p) for p in kept["segments"]] == pieces(weights.size)
    assert len(kept["segments"]) > 4 and 0 < done < weights.size

    registry.throttle_bytes_per_s = None
    registry.requests.clear()
    registry.blob_bytes.clear()
    memos(["upgrade", "acme/big"], env, tmp_path)
    assert registry.blob_bytes == {weights.sha256: weights.size - done}
    asked = [r or "" for _, p, r in registry.requests if weights.sha256 in p]
    starts = [s + d for (s, e), d in zip(kept["segments"], kept["done"], strict=True) if s + d < e]
    assert sorted(int(r.removeprefix("bytes=").split("-")[0]) for r in asked) == sorted(starts)
    assert not partial.exists() and not record.exists()
    (listed,) = json.loads(memos(["list", "--json"], env, tmp_path).stdout)
    assert listed["version"] == "1.1.0"
    assert json.loads(memos(["verify", "--installed", "--json"], env, tmp_path).stdout)["ok"]
