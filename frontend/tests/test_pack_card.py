"""The pack page as a buyer judges it: the card, previews, files, version diff, changelog,
and a MIP 2 version published by its manifest alone (no pack file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memstore.accounts.actor import Actor
from memstore.ingest.services import ingest_run
from memstore.packs.cards import card_parse, licence_links
from memstore.packs.diff import memory_diff
from memstore.packs.models import PackVersion
from memstore.packs.services import pack_publish
from memstore.packs.tests.blobkit import (
    memories_file,
    publish_missing_only,
    signed_manifest,
    token_client,
)
from protocol import pack_directory
from protocol.conformance import generate as g

pytestmark = pytest.mark.django_db

CARD = """---
license: MIT
base_models: [HuggingFaceTB/SmolLM2-135M]
languages: [en, fr]
tags: [tides, harbour]
personal_data: No personal data; harbour timetables only.
preview: [m3]
changelog: First public release.
---
# Harbour notes

Everything about **tides**. <script>alert(1)</script>
"""


def test_card_front_matter_is_parsed_and_a_card_without_it_stays_markdown() -> None:
    card = card_parse(CARD)
    assert card.license == "MIT" and card.languages == ("en", "fr")
    assert card.preview == ("m3",) and card.body.startswith("# Harbour notes")
    plain = card_parse("# Title\n\nno front matter")
    assert plain.body == "# Title\n\nno front matter" and plain.license == ""
    broken = card_parse("---\n: : [\n---\nbody")
    assert broken.problems and broken.body.startswith("---")


def test_licence_ids_link_to_spdx_but_licenseref_does_not() -> None:
    links = {link.text: link.url for link in licence_links("MIT OR LicenseRef-Proprietary")}
    assert links["MIT"] == "https://spdx.org/licenses/MIT.html"
    assert links["LicenseRef-Proprietary"] == "" and links["OR"] == ""


def test_memory_diff_names_added_changed_and_removed() -> None:
    old = {("n", "m1"): "a", ("n", "m2"): "b", ("n", "m3"): "c"}
    new = {("n", "m1"): "a", ("n", "m2"): "B", ("n", "m4"): "d"}
    diff = memory_diff(old, new)
    assert diff.added == (("n", "m4"),) and diff.changed == (("n", "m2"),)
    assert diff.removed == (("n", "m3"),) and diff.unchanged == 1


def _indexed(version: PackVersion) -> PackVersion:
    ingest_run(version_id=version.pk)
    return version


def test_pack_page_renders_the_card_sanitised_with_its_facts_and_marked_preview(
    client: Any, publish: Any
) -> None:
    _indexed(
        publish("harbour", description=CARD, memories=["low tide", "high tide", "spring tide"])
    )
    html = client.get("/p/acme/harbour").content.decode()
    assert "<script>" not in html.split("</header>", 1)[1].split("<footer", 1)[0]
    assert "<strong>tides</strong>" in html
    # The signed manifest's licence binds (linked to SPDX); the card's other one is flagged.
    assert 'href="https://spdx.org/licenses/Apache-2.0.html"' in html
    assert 'href="https://spdx.org/licenses/MIT.html"' not in html
    assert "the card states the licence MIT, the manifest Apache-2.0" in html
    assert "HuggingFaceTB/SmolLM2-135M" in html and "en, fr" in html
    assert "No personal data; harbour timetables only." in html
    assert "no evaluation yet" in html
    preview = html.split('id="preview-h"', 1)[1].split("</section>", 1)[0]
    assert "spring tide" in preview and "low tide" not in preview  # only the marked m3


def test_previews_default_to_the_first_memories_and_unstated_facts_read_as_missing(
    client: Any, publish: Any
) -> None:
    texts = [f"memory number {i}" for i in range(1, 6)]
    _indexed(publish("plain", description="# Plain\n\nNo front matter.", memories=texts))
    html = client.get("/p/acme/plain").content.decode()
    preview = html.split('id="preview-h"', 1)[1].split("</section>", 1)[0]
    assert [t in preview for t in texts] == [True, True, True, False, False]
    assert "the publisher made no statement" in html and "not stated" in html


def test_pack_page_shows_files_diff_against_the_previous_version_and_changelog(
    client: Any, publish: Any
) -> None:
    v1 = "---\nchangelog: Three memories.\n---\n# Notes"
    v2 = "---\nchangelog: Reworded m2, dropped m3, added m4.\n---\n# Notes"
    _indexed(publish("notes", version="1.0.0", description=v1, memories=["one", "two", "three"]))
    second = [{"id": "m1", "text": "one"}, {"id": "m2", "text": "TWO"}, {"id": "m4", "text": "4"}]
    _indexed(publish("notes", version="1.1.0", description=v2, memories=second))
    html = client.get("/p/acme/notes").content.decode()
    assert "payloads/notes/memories.jsonl" in html  # the file list
    diff = html.split('id="diff-h"', 1)[1].split("</section>", 1)[0]
    assert "Changes since v1.0.0" in diff
    assert "1 added" in diff and "1 changed" in diff and "1 removed" in diff
    assert "+ notes/m4" in diff and "~ notes/m2" in diff and "\u2212 notes/m3" in diff
    log = html.split('id="changelog-h"', 1)[1].split("</section>", 1)[0]
    assert log.index("Reworded m2") < log.index("Three memories.")
    first = client.get("/p/acme/notes?v=1.0.0").content.decode()
    assert 'id="diff-h"' not in first  # nothing to compare the first version with


def test_manifest_only_mip2_version_shows_manifest_digest_and_blobs_not_a_blank_sha(
    client: Any, tmp_path: Path, acme: Any, local_storage: Any
) -> None:
    user, _, key = acme
    files = {f"c{i}": memories_file([f"blob memory {i}"]) for i in range(3)}
    signed = signed_manifest(
        tmp_path, name="acme/blobbed", version="2.0.0", files=files, keys=[key]
    )
    _, response = publish_missing_only(token_client(user), signed)
    assert response.status_code == 201, response.content
    version = PackVersion.objects.get(pack__name="blobbed")
    assert version.file_sha256 == ""
    html = client.get("/p/acme/blobbed").content.decode()
    side = html.split('id="files-h"', 1)[1].split("</section>", 1)[0]
    assert "Manifest and blobs" in side and "no pack file" in side
    assert version.manifest_sha256 in side
    for sha in signed.blobs:
        assert sha[:16] in side
    assert '<code class="mono digest"></code>' not in html
    assert "blobs only" in html  # the versions table names it instead of a blank digest


def test_kv_and_lora_cubes_show_model_cached_tokens_rank_and_size(
    client: Any, tmp_path: Path, acme: Any, local_storage: Any
) -> None:
    user, _, key = acme
    kv, weights = g.kv_cache(seq_len=7), g.lora_weights()
    manifest = g.manifest_dict(
        g.plaintext_cube(),
        g.activation_cube(kv),
        g.parameter_cube(g.LORA_CONFIG, weights),
        name="acme/all-types",
    )
    bodies = [g.NOTES, kv, g.LORA_CONFIG, weights]
    source = tmp_path / "src"
    for rel, body in g.payload_map(manifest, bodies).items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(body)
    (source / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    pack_directory(source, tmp_path / "all.memcube", keys=[key])
    pack_publish(actor=Actor(user=user, scopes=None), pack_file=tmp_path / "all.memcube")
    html = client.get("/p/acme/all-types").content.decode()
    cubes = html.split('id="cubes-h"', 1)[1].split("</section>", 1)[0]
    assert "7 tokens cached" in cubes
    assert "LoRA rank 2 on q_proj, v_proj" in cubes
    assert "activation" in cubes and "parameter" in cubes and "KV heads" in cubes
