"""Shared fixtures for the protocol tests: keys, manifests and pack sources.

The conformance generator's helpers build the payloads and manifests, so the
tests and the vectors exercise the same inputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from protocol.conformance import generate as g

# One profile for every property test here: enough examples to find the usual
# parser crashes, few enough to keep the protocol suite well under two minutes.
PROPERTY = settings(
    max_examples=int(os.environ.get("MIP_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def write_source(root: Path, manifest: dict[str, Any], payloads: dict[str, bytes]) -> Path:
    """A pack source folder: manifest.json plus payload files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), "utf-8")
    for rel, body in payloads.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return root


@pytest.fixture
def manifest_data() -> dict[str, Any]:
    return g.manifest_dict()


@pytest.fixture
def plaintext_source(tmp_path: Path) -> Path:
    manifest = g.manifest_dict()
    return write_source(tmp_path / "src", manifest, g.payload_map(manifest, [g.NOTES]))


@pytest.fixture
def all_types_source(tmp_path: Path) -> Path:
    kv, weights = g.kv_cache(), g.lora_weights()
    manifest = g.manifest_dict(
        g.plaintext_cube(), g.activation_cube(kv), g.parameter_cube(g.LORA_CONFIG, weights)
    )
    bodies = [g.NOTES, kv, g.LORA_CONFIG, weights]
    return write_source(tmp_path / "src", manifest, g.payload_map(manifest, bodies))
