"""The registry's own evaluation: questions run through its search at ingestion, and the
stored recall@5 equals what the public search API answers for the same questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from memstore.accounts.actor import Actor
from memstore.ingest.services import ingest_run
from memstore.packs.evaluation import RECALL_DEPTH
from memstore.packs.models import VersionEvaluation
from memstore.packs.services import pack_publish
from memstore.testing.packs import build_pack

pytestmark = [pytest.mark.model, pytest.mark.django_db]

MEMORIES = [
    "Sourdough starter needs feeding with flour and water every day.",
    "A lighthouse lens is cleaned with a soft cloth and alcohol.",
    "Copper pans conduct heat quickly and evenly.",
    "The ferry leaves the north pier at seven every morning.",
]
QUESTIONS = [
    {"question": "How do I keep a sourdough starter alive?", "answers": ["m1"]},
    {"question": "When does the ferry leave?", "answers": ["m4", "notes/m2"]},
]


def test_ingestion_measures_recall_and_mrr_that_the_search_api_reproduces(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> None:
    _, _, key = alice
    pack_file = build_pack(
        tmp_path,
        name="acme/kitchen",
        keys=[key],
        memories=MEMORIES,
        manifest_extra={"evaluation": {"questions": QUESTIONS}},
    )
    version = pack_publish(actor=alice_actor, pack_file=pack_file, storage=local_storage)
    assert version.manifest["evaluation"]["questions"] == QUESTIONS  # kept, signed
    ingest_run(version_id=version.pk, storage=local_storage)
    evaluation = VersionEvaluation.objects.get(version=version)
    assert evaluation.questions == 2
    assert [d["answers"] for d in evaluation.details] == [q["answers"] for q in QUESTIONS]

    client = APIClient()
    recalls = []
    for q in QUESTIONS:
        answer = client.get(
            "/api/v1/search/memories",
            {"q": q["question"], "pack": "acme/kitchen", "page_size": RECALL_DEPTH},
        ).json()
        found = {f"{h['cube_id']}/{h['record_id']}" for h in answer["results"]}
        found |= {h["record_id"] for h in answer["results"]}
        recalls.append(sum(a in found for a in q["answers"]) / len(q["answers"]))
    assert evaluation.recall_at_5 == pytest.approx(sum(recalls) / len(recalls))
    assert evaluation.recall_at_5 == pytest.approx(0.75)  # notes/m2 (a lens) is not found
    assert 0 < evaluation.mrr <= 1

    ingest_run(version_id=version.pk, storage=local_storage, force=True)  # idempotent
    assert VersionEvaluation.objects.filter(version=version).count() == 1


def test_a_pack_without_questions_has_no_evaluation(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> None:
    _, _, key = alice
    pack_file = build_pack(tmp_path, name="acme/plain", keys=[key], memories=MEMORIES[:2])
    version = pack_publish(actor=alice_actor, pack_file=pack_file, storage=local_storage)
    ingest_run(version_id=version.pk, storage=local_storage)
    assert not VersionEvaluation.objects.filter(version=version).exists()
