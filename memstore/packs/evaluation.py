"""A pack's evaluation questions and how the registry scores its search answers.

A manifest MAY carry ``evaluation.questions`` (SPEC.md section 3.7): each a
question and the ids of the memories that answer it. Ingestion runs every
question through the registry's own memory search, scoped to the version
(:mod:`memstore.ingest.quality`), and scores the ranked hits here:

* **recall@5** of a question: the share of its answer ids among the first 5 hits;
  of the version: the mean over its questions.
* **MRR**: the mean over questions of 1 / the rank of the first answer among the
  first :data:`MRR_DEPTH` hits (0 when none is there).

An answer id is a memory record id (``m12``), or ``cube/record`` where two cubes
share record ids. The scores are stored on :class:`~memstore.packs.models.VersionEvaluation`;
search sorts by recall@5. Not here: running the search (ingest), the badge (frontend).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MRR_DEPTH",
    "RECALL_DEPTH",
    "Question",
    "QuestionScore",
    "answer_matches",
    "evaluation_questions",
    "question_score",
]

RECALL_DEPTH = 5
MRR_DEPTH = 10
MAX_QUESTIONS = 1000


@dataclass(frozen=True)
class Question:
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class QuestionScore:
    question: str
    answers: tuple[str, ...]
    ranks: tuple[int, ...]  # 1-based ranks (<= MRR_DEPTH) at which answers were found
    recall_at_5: float
    reciprocal_rank: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answers": list(self.answers),
            "ranks": list(self.ranks),
            "recall_at_5": self.recall_at_5,
            "reciprocal_rank": self.reciprocal_rank,
        }


def evaluation_questions(manifest: dict[str, Any]) -> list[Question]:
    """The questions of a stored manifest (already schema-checked at publish); [] if none."""
    evaluation = manifest.get("evaluation")
    if not isinstance(evaluation, dict):
        return []
    questions: list[Question] = []
    for item in evaluation.get("questions") or []:
        if not isinstance(item, dict):
            continue
        text = str(item.get("question") or "").strip()
        answers = tuple(dict.fromkeys(str(a) for a in item.get("answers") or [] if a))
        if text and answers:
            questions.append(Question(text, answers))
    return questions[:MAX_QUESTIONS]


def answer_matches(answer: str, *, cube_id: str, record_id: str) -> bool:
    return answer == record_id or answer == f"{cube_id}/{record_id}"


def question_score(question: Question, hits: Sequence[tuple[str, str]]) -> QuestionScore:
    """Score the ranked ``(cube_id, record_id)`` hits of one question."""
    ranks: list[int] = []
    found: set[str] = set()
    for rank, (cube_id, record_id) in enumerate(hits[:MRR_DEPTH], start=1):
        matched = [
            a for a in question.answers if answer_matches(a, cube_id=cube_id, record_id=record_id)
        ]
        if matched:
            ranks.append(rank)
            if rank <= RECALL_DEPTH:
                found.update(matched)
    return QuestionScore(
        question=question.question,
        answers=question.answers,
        ranks=tuple(ranks),
        recall_at_5=len(found) / len(question.answers),
        reciprocal_rank=1.0 / ranks[0] if ranks else 0.0,
    )
