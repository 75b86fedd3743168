"""The registry's own measure of a pack: its evaluation questions through the registry's search.

Run by :func:`memstore.ingest.services.ingest_run` once a version's memories
are indexed: every question of the manifest's ``evaluation`` goes through
:func:`memstore.search.selectors.memories_search` (the same hybrid ranking the
search API answers with), scoped to the version, as the publisher (so a
private pack is evaluated too); the hits are scored by
:mod:`memstore.packs.evaluation` and the means stored on the version. A version
without questions has no evaluation (the page says so). Idempotent: a rerun
replaces the row. Not here: the scoring rules (``packs.evaluation``).
"""

from __future__ import annotations

from django.utils import timezone

from ..accounts.actor import ANONYMOUS, system_actor
from ..packs.evaluation import MRR_DEPTH, QuestionScore, evaluation_questions, question_score
from ..packs.models import PackVersion, VersionEvaluation
from ..search.selectors import SearchFilters, memories_search

__all__ = ["quality_run"]


def quality_run(*, version: PackVersion) -> VersionEvaluation | None:
    """Run the version's questions through search and store recall@5 and MRR (or clear them)."""
    questions = evaluation_questions(version.manifest)
    if not questions:
        VersionEvaluation.objects.filter(version=version).delete()
        return None
    actor = system_actor(version.published_by) if version.published_by else ANONYMOUS
    scores: list[QuestionScore] = []
    for question in questions:
        page = memories_search(
            actor=actor,
            query=question.question[:500],
            filters=SearchFilters(version_id=version.pk),
            page=1,
            page_size=MRR_DEPTH,
        )
        hits = [(hit.cube_id, hit.record_id) for hit in page.results]
        scores.append(question_score(question, hits))
    evaluation, _ = VersionEvaluation.objects.update_or_create(
        version=version,
        defaults={
            "questions": len(scores),
            "recall_at_5": sum(s.recall_at_5 for s in scores) / len(scores),
            "mrr": sum(s.reciprocal_rank for s in scores) / len(scores),
            "details": [s.to_dict() for s in scores],
            "evaluated_at": timezone.now(),
        },
    )
    return evaluation
