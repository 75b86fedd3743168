"""Scoring a pack's evaluation questions: recall@5 and reciprocal rank."""

from __future__ import annotations

from memstore.packs.evaluation import Question, evaluation_questions, question_score


def test_questions_are_read_from_the_manifest_and_bad_entries_skipped() -> None:
    manifest = {
        "evaluation": {
            "questions": [
                {"question": "Where?", "answers": ["m1", "m1", "notes/m2"]},
                {"question": "", "answers": ["m3"]},
                "junk",
            ]
        }
    }
    assert evaluation_questions(manifest) == [Question("Where?", ("m1", "notes/m2"))]
    assert evaluation_questions({}) == []


def test_recall_counts_answers_in_the_first_five_and_rr_the_first_rank() -> None:
    question = Question("q", ("m1", "notes/m9"))
    hits = [("notes", f"m{i}") for i in (4, 5, 1, 6, 7, 8, 9)]
    score = question_score(question, hits)
    assert score.ranks == (3, 7)
    assert score.recall_at_5 == 0.5  # m9 is 7th: found, but not in the first five
    assert score.reciprocal_rank == 1 / 3
    assert question_score(question, []).reciprocal_rank == 0.0
