"""A real OCI distribution registry for the OCI tests: Debian's ``docker-registry``.

One private instance per test session on a free loopback port, with its storage in a temporary
folder (``scripts/ensure-services`` installs the package; the system service is never used). The
tests tamper with its storage directly (``OCIRegistry.blob_data``) to play a hostile registry.
With ``CI=true`` a missing binary is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from protocol import SigningKey

BINARIES = ("docker-registry", "registry")


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is required when CI=true (scripts/ensure-services installs it)")
    pytest.skip(f"{what} is not available (scripts/ensure-services installs it)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class OCIRegistry:
    """A running distribution registry: ``host`` (``127.0.0.1:PORT``) and its storage root."""

    host: str
    storage: Path

    def blob_data(self, digest: str) -> Path:
        """The file the registry serves blob ``sha256:<hex>`` from (filesystem driver layout)."""
        hexdigest = digest.removeprefix("sha256:")
        return (
            self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexdigest[:2]
            / hexdigest / "data"
        )  # fmt: skip

    def reference(self, repository: str, tag: str | None = None) -> str:
        return f"oci://{self.host}/{repository}" + (f":{tag}" if tag else "")


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OCIRegistry]:
    binary = next((b for b in map(shutil.which, BINARIES) if b), None)
    if binary is None:
        _missing("Debian's docker-registry (OCI distribution registry)")
        return
    root = tmp_path_factory.mktemp("oci-registry")
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n",
        "utf-8",
    )
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited: {(root / 'registry.log').read_text('utf-8')}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("docker-registry did not answer on /v2/ within 30 s")
            time.sleep(0.1)
        yield OCIRegistry(f"127.0.0.1:{port}", root / "storage")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def repo_prefix() -> str:
    """A repository prefix of the test's own (the registry is shared by the session)."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(b"c" * 32)


@pytest.fixture
def other_key() -> SigningKey:
    return SigningKey.from_seed(b"x" * 32)
