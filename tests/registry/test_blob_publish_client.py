"""`memos publish` blob by blob against the real registry (live server, PostgreSQL, local storage).

A second version that changed one of ten memories files sends only that blob;
a `memos publish` killed (SIGKILL) in the middle of a blob publishes nothing,
and the rerun continues that blob where the registry has it, publishes, and
the version installs; `--whole` still uploads the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from memstore.accounts.services import api_token_create
from memstore.packs.models import PackVersion
from memstore.storage.models import BlobUpload
from memstore.testing.factories import publisher
from protocol import SigningKey, manifest_blobs, read_pack
from runtime.tests.helpers import build_pack, lora_cube, plain_cube

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
MEMOS = [sys.executable, "-c", "from runtime.cli.main import run; run()"]


def _memories(cube: int, tag: str) -> list[str]:
    return [
        f"memory {cube}.{i} ({tag}) " + hashlib.sha256(f"{cube}/{i}/{tag}".encode()).hexdigest()
        for i in range(120)
    ]


def _ten_files(
    tmp: Path, key: SigningKey, version: str, *, changed: int | None = None, mip: str | None = None
) -> Path:
    """A pack of 10 plaintext cubes, one memories file (one blob) each (MIP 1, or ``mip``)."""

    def tag(cube: int) -> str:
        return version if cube == changed else "1.0.0"

    extra = [plain_cube(f"c{i}", _memories(i, tag(i))) for i in range(1, 10)]
    return build_pack(
        tmp / version, name="acme/ten", version=version, keys=[key],
        memories=_memories(0, tag(0)), extra_cubes=extra, mip_version=mip,
    )  # fmt: skip


@pytest.fixture
def alice(
    tmp_path: Path, live_server: Any, local_storage: Any
) -> tuple[dict[str, str], SigningKey]:
    """The environment of a `memos` run as alice (owner of acme, token), and acme's key."""
    user, _, key = publisher("acme", "alice")
    _, token = api_token_create(user=user)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(
        MEMOS_HOME=str(tmp_path / "home"),
        MEMOS_REGISTRY=live_server.url,
        MEMOS_TOKEN=token,
        MEMOS_EMBEDDER="hash",
        MEMOS_PRINCIPAL="new-user",
        MEMOS_MAINTAIN_HOURS="0",
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
    )
    return env, key


def _memos(args: list[str], env: dict[str, str], cwd: Path) -> Any:
    proc = subprocess.run(
        [*MEMOS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, f"memos {args}: {proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def _received(sha256: str | None = None) -> int:
    rows = BlobUpload.objects.all() if sha256 is None else BlobUpload.objects.filter(sha256=sha256)
    return sum(rows.values_list("received", flat=True))


def test_a_version_that_changed_one_of_ten_files_sends_that_blob_only(
    tmp_path: Path, alice: tuple[dict[str, str], SigningKey]
) -> None:
    mip = "2.0"  # `memos publish` sends 1.x packs whole (see test_a_mip1_pack_is_sent_whole)
    env, key = alice
    v1_file = _ten_files(tmp_path, key, "1.0.0", mip=mip)
    v1 = _memos(["publish", str(v1_file), "--json"], env, tmp_path)
    first = _received()
    v2_file = _ten_files(tmp_path, key, "1.1.0", changed=4, mip=mip)
    v2 = _memos(["publish", str(v2_file), "--json"], env, tmp_path)
    second = _received() - first
    assert (v1["mode"], v1["blobs"]["sent"], v1["blobs"]["present"]) == ("blobs", 10, 0)
    assert (v2["blobs"]["sent"], v2["blobs"]["present"]) == (1, 9)
    assert v1["blobs"]["bytes_sent"] == first == v1["blobs"]["bytes_total"]
    assert v2["blobs"]["bytes_sent"] == second <= 0.15 * first
    assert sorted(PackVersion.objects.values_list("version", flat=True)) == ["1.0.0", "1.1.0"]
    installed = _memos(["install", "acme/ten@1.1.0", "--json"], env, tmp_path)
    assert installed[0]["version"] == "1.1.0"
    hits = _memos(["search", "memory 4.7 (1.1.0)", "--json"], env, tmp_path)
    assert any("(1.1.0)" in h["text"] for h in hits)


def test_a_killed_publish_publishes_nothing_and_the_rerun_resumes_mid_blob(
    tmp_path: Path, alice: tuple[dict[str, str], SigningKey], settings: Any
) -> None:
    settings.MEMSTORE_UPLOAD_CHUNK_BYTES = 64 * 1024  # many chunks: the kill lands mid-blob
    env, key = alice
    path = build_pack(
        tmp_path, name="acme/big", keys=[key], memories=["a pack with a big adapter"],
        extra_cubes=[lora_cube("adapter", floats=1_500_000)], mip_version="2.0",
    )  # fmt: skip
    big = max(manifest_blobs(read_pack(path).manifest), key=lambda b: b.size)
    proc = subprocess.Popen(
        [*MEMOS, "publish", str(path), "--quiet"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        row = BlobUpload.objects.filter(sha256=big.sha256).first()
        if row is not None and row.offset >= big.size // 4:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    row = BlobUpload.objects.get(sha256=big.sha256)
    assert 0 < row.offset < big.size and row.status == "open"
    assert not PackVersion.objects.filter(pack__name="big").exists()  # nothing published

    again = _memos(["publish", str(path), "--json"], env, tmp_path)
    assert again["version"] == "1.0.0"
    assert again["blobs"]["bytes_resumed"] >= row.offset
    assert _received(big.sha256) == big.size  # every byte of the blob sent once
    assert PackVersion.objects.filter(pack__name="big").count() == 1
    installed = _memos(["install", "acme/big", "--json"], env, tmp_path)
    assert installed[0]["version"] == "1.0.0"


def test_a_mip1_pack_is_sent_whole(
    tmp_path: Path, alice: tuple[dict[str, str], SigningKey]
) -> None:
    env, key = alice
    result = _memos(["publish", str(_ten_files(tmp_path, key, "1.0.0")), "--json"], env, tmp_path)
    assert result["mode"] == "whole"
    assert _received() == 0
    version = PackVersion.objects.get(pack__name="ten")
    assert version.file_sha256 == result["sha256"]


def test_whole_still_uploads_the_file(
    tmp_path: Path, alice: tuple[dict[str, str], SigningKey]
) -> None:
    env, key = alice
    result = _memos(
        ["publish", str(_ten_files(tmp_path, key, "1.0.0")), "--whole", "--json"], env, tmp_path
    )
    assert result["mode"] == "whole" and result["size"] > 0
    assert _received() == 0
    version = PackVersion.objects.get(pack__name="ten")
    assert version.file_sha256 == result["sha256"]


def test_dry_run_shows_the_scan_findings_and_publishes_nothing_then_publish_sends_no_blob(
    tmp_path: Path, alice: tuple[dict[str, str], SigningKey], settings: Any
) -> None:
    settings.MEMSTORE_REFUSE_SECRETS = True
    env, key = alice
    memories = ["Deploys happen on Tuesdays.", "Write to jane.doe@example.org for access."]
    pack = build_pack(tmp_path, name="acme/check", keys=[key], memories=memories, mip_version="2.0")

    checked = _memos(["publish", str(pack), "--dry-run", "--json"], env, tmp_path)
    assert checked["published"] is False and checked["name"] == "acme/check"
    assert [(f["kind"], f["record_id"]) for f in checked["findings"]] == [("personal_data", "m2")]
    assert "jane.doe@example.org" not in json.dumps(checked)  # masked, as on the page
    assert checked["blobs"]["sent"] == checked["blobs"]["total"] > 0
    assert not PackVersion.objects.filter(pack__name="check").exists()

    published = _memos(["publish", str(pack), "--json"], env, tmp_path)
    assert published["blobs"]["sent"] == 0  # the dry run's uploads serve the publish
    assert PackVersion.objects.filter(pack__name="check", version="1.0.0").exists()

    secret = build_pack(tmp_path / "s", name="acme/leaky", keys=[key], mip_version="2.0",
                        memories=["aws key AKIAIOSFODNN7EXAMPLE"])  # fmt: skip
    refused = subprocess.run(
        [*MEMOS, "publish", str(secret), "--dry-run"], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 1 and "registry.secrets_found" in refused.stderr
    assert not PackVersion.objects.filter(pack__name="leaky").exists()
