"""What the pack page shows of a pack's signals: quality badge, scan findings, likes, installs.

Reads only, composed from ``memstore.packs`` (the evaluation ingestion stored,
the publish-time scan's findings, likes, the counted downloads); the templates
get small frozen dataclasses. Not here: the measures themselves
(``memstore.ingest.quality``, ``memstore.packs.scanning``), the like form's view.
"""

from __future__ import annotations

from dataclasses import dataclass

from memstore.accounts.actor import Actor
from memstore.packs.likes import like_state
from memstore.packs.models import Pack, PackVersion, VersionEvaluation, VersionFinding

__all__ = ["FindingGroup", "PackSignals", "QualityBadge", "pack_signals", "quality_text"]

KIND_LABELS = {
    VersionFinding.Kind.SECRET.value: "Possible secrets",
    VersionFinding.Kind.PERSONAL_DATA.value: "Personal data",
    VersionFinding.Kind.PROMPT_INJECTION.value: "Prompt-injection patterns",
}
SHOWN_PER_KIND = 20


@dataclass(frozen=True)
class QualityBadge:
    questions: int  # 0: the pack carries no evaluation questions
    recall_at_5: float | None
    mrr: float | None
    text: str


@dataclass(frozen=True)
class FindingGroup:
    kind: str
    label: str
    count: int
    shown: tuple[VersionFinding, ...]


@dataclass(frozen=True)
class PackSignals:
    quality: QualityBadge
    findings: tuple[FindingGroup, ...]
    findings_total: int
    likes: int
    liked: bool
    installs: int


def quality_text(recall_at_5: float, questions: int) -> str:
    """The badge, as the page and the search results write it."""
    return f"recall@5 {recall_at_5:.2f} on {questions} question{'s' if questions != 1 else ''}"


def _quality(version: PackVersion, ingest_status: str) -> QualityBadge:
    evaluation = VersionEvaluation.objects.filter(version=version).first()
    if evaluation is not None:
        return QualityBadge(
            questions=evaluation.questions,
            recall_at_5=evaluation.recall_at_5,
            mrr=evaluation.mrr,
            text=quality_text(evaluation.recall_at_5, evaluation.questions),
        )
    asks = isinstance(version.manifest.get("evaluation"), dict)
    if asks and ingest_status != "done":
        return QualityBadge(0, None, None, "quality not measured yet (indexing)")
    return QualityBadge(0, None, None, "no evaluation questions: quality not measured")


def _findings(version: PackVersion) -> tuple[tuple[FindingGroup, ...], int]:
    rows = list(VersionFinding.objects.filter(version=version))
    groups = []
    for kind, label in KIND_LABELS.items():
        of_kind = [f for f in rows if f.kind == kind]
        if of_kind:
            groups.append(FindingGroup(kind, label, len(of_kind), tuple(of_kind[:SHOWN_PER_KIND])))
    return tuple(groups), len(rows)


def pack_signals(*, actor: Actor, pack: Pack, version: PackVersion) -> PackSignals:
    job = getattr(version, "ingest", None)
    groups, total = _findings(version)
    likes = like_state(actor=actor, pack=pack)
    return PackSignals(
        quality=_quality(version, str(job.status) if job is not None else "pending"),
        findings=groups,
        findings_total=total,
        likes=likes.likes,
        liked=likes.liked,
        installs=pack.download_count,
    )
