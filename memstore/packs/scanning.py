"""The publish-time scan of plaintext memories: secrets, personal data, prompt injection.

Called by both publish paths after the publish gate and the signature checks
(the publisher is known and may publish) and before the version is committed,
so a refused pack leaves nothing behind; the findings are stored per version
in the publish transaction (:class:`~memstore.packs.models.VersionFinding`),
returned by the publish API and shown on the pack page.

Rules (one finding per rule and memory; a secret or datum is never stored in clear):

* **secret**: detect-secrets' detectors (AWS, GitHub, GitLab, Slack, Stripe, OpenAI,
  private keys, JWTs, basic-auth URLs, ``password = ...`` keywords, ...), except the
  two high-entropy-string detectors, which flag every digest and identifier that
  prose about software quotes, and the public-IP detector (an address is no secret).
* **personal_data**: an e-mail address; a phone number written in international
  form (``+`` then 8-15 digits, spaces, dots, dashes or parentheses between); an
  IBAN whose ISO 13616 mod-97 check holds; a card-like number of 13-19 digits
  whose Luhn check holds.
* **prompt_injection**: phrases that try to override the reader model's
  instructions ("ignore previous instructions", "disregard the above", "reveal
  your system prompt", "you are now DAN" ...) and chat-template role markers
  (``<|im_start|>``, ``[INST]``, ``<<SYS>>``, a line starting ``system:``).

Policy: ``MEMSTORE_REFUSE_SECRETS`` (default: on unless ``DEBUG``) refuses a pack
with any secret finding, ``registry.secrets_found`` (422), the findings in the
error's detail. Not here: where payload bytes come from (the publish paths pass
an opener), the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Any

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.core.scan import scan_line
from detect_secrets.settings import transient_settings
from django.conf import settings

from protocol import Manifest, MediaType, PayloadRef, iter_memory_records

from ..errors import InvalidRequestError
from .models import PackVersion, VersionFinding

__all__ = [
    "Finding",
    "PayloadOpener",
    "ScanReport",
    "SecretsFoundError",
    "findings_save",
    "scan_manifest",
    "scan_policy_check",
    "scan_text",
]

SECRET = VersionFinding.Kind.SECRET.value
PERSONAL_DATA = VersionFinding.Kind.PERSONAL_DATA.value
PROMPT_INJECTION = VersionFinding.Kind.PROMPT_INJECTION.value
#: Findings kept per version (a pack of scraped pages can hold thousands of e-mails).
MAX_FINDINGS = 500
_SKIPPED_DETECTORS = {"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"}

PayloadOpener = Callable[[PayloadRef], AbstractContextManager[IO[bytes]]]


@dataclass(frozen=True)
class Finding:
    kind: str  # secret | personal_data | prompt_injection
    rule: str
    cube_id: str
    record_id: str
    excerpt: str  # masked

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "cube_id": self.cube_id,
            "record_id": self.record_id,
            "excerpt": self.excerpt,
        }


@dataclass(frozen=True)
class ScanReport:
    findings: tuple[Finding, ...]
    memories: int  # how many plaintext memories were scanned
    truncated: bool = False  # more than MAX_FINDINGS: the first ones are kept

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)


class SecretsFoundError(InvalidRequestError):
    code = "registry.secrets_found"
    status = 422


# --------------------------------------------------------------------------- rules


def _mask(value: str) -> str:
    value = value.strip()
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * min(len(value) - 4, 12) + value[-2:]


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
_PHONE = re.compile(r"(?<![\w+])\+\d[\d ().-]{6,22}\d(?!\w)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")

_INJECTION: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (rule, re.compile(pattern, re.IGNORECASE | re.MULTILINE))
    for rule, pattern in (
        (
            "ignore-instructions",
            r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*"
            r"(?:previous|prior|above|earlier|preceding|system)\s+"
            r"(?:instructions?|prompts?|directions?|rules|messages?)",
        ),
        ("disregard-above", r"\bdisregard\s+(?:everything|all)\s+(?:above|before)\b"),
        ("reveal-prompt", r"\b(?:reveal|print|show|repeat)\s+(?:your|the)\s+system\s+prompt\b"),
        ("role-override", r"\byou\s+are\s+now\s+(?:DAN\b|in\s+developer\s+mode|jailbroken)"),
        (
            "chat-template-marker",
            r"<\|(?:im_start|im_end|system|assistant|user)\|>"
            r"|\[/?INST\]|<</?SYS>>",
        ),
        ("role-line", r"^\s*(?:###\s*)?(?:system|assistant)\s*:\s*\S.{0,80}"),
    )
)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _personal_data(text: str) -> Iterator[tuple[str, str]]:
    for match in _EMAIL.finditer(text):
        yield "email", _mask(match.group())
    for match in _PHONE.finditer(text):
        if 8 <= len(_digits(match.group())) <= 15:
            yield "phone-number", _mask(match.group())
    for match in _IBAN.finditer(text):
        if _iban_ok(match.group()):
            yield "iban", _mask(match.group())
    for match in _CARD.finditer(text):
        digits = _digits(match.group())
        if len(set(digits)) > 1 and _luhn(digits):
            yield "card-number", _mask(digits)


def _injection(text: str) -> Iterator[tuple[str, str]]:
    for rule, pattern in _INJECTION:
        match = pattern.search(text)
        if match:
            yield rule, match.group().strip()[:120]


def _detectors() -> list[dict[str, Any]]:
    detectors: dict[str, type[Any]] = get_mapping_from_secret_type_to_class()
    names = {cls.__name__ for cls in detectors.values()}
    return [{"name": name} for name in sorted(names - _SKIPPED_DETECTORS)]


def _secrets(text: str) -> Iterator[tuple[str, str]]:
    """detect-secrets over each line (inside :func:`_secret_settings`)."""
    for line in text.splitlines():
        for secret in scan_line(line):
            yield secret.type, _mask(secret.secret_value or "")


def _secret_settings() -> AbstractContextManager[Any]:
    return transient_settings({"plugins_used": _detectors()})


def scan_text(text: str) -> list[tuple[str, str, str]]:
    """(kind, rule, masked excerpt) for one memory's text; one per rule."""
    with _secret_settings():
        return list(_scan_one(text))


def _scan_one(text: str) -> Iterator[tuple[str, str, str]]:
    seen: set[tuple[str, str]] = set()
    sources: tuple[tuple[str, Iterable[tuple[str, str]]], ...] = (
        (SECRET, _secrets(text)),
        (PERSONAL_DATA, _personal_data(text)),
        (PROMPT_INJECTION, _injection(text)),
    )
    for kind, found in sources:
        for rule, excerpt in found:
            if (kind, rule) not in seen:
                seen.add((kind, rule))
                yield kind, rule, excerpt


# --------------------------------------------------------------------------- a pack


def scan_manifest(manifest: Manifest, open_payload: PayloadOpener) -> ScanReport:
    """Scan every plaintext memory of ``manifest``, reading payloads with ``open_payload``."""
    findings: list[Finding] = []
    memories = 0
    truncated = False
    with _secret_settings():
        for cube in manifest.cubes:
            for ref in cube.payloads:
                if ref.media_type != MediaType.MEMORIES_JSONL:
                    continue
                with open_payload(ref) as stream:
                    for record in iter_memory_records(stream):
                        memories += 1
                        for kind, rule, excerpt in _scan_one(record.text):
                            if len(findings) >= MAX_FINDINGS:
                                truncated = True
                                continue
                            findings.append(Finding(kind, rule, cube.id, record.id, excerpt))
    return ScanReport(findings=tuple(findings), memories=memories, truncated=truncated)


def _refuse_secrets() -> bool:
    return bool(getattr(settings, "MEMSTORE_REFUSE_SECRETS", not settings.DEBUG))


def scan_policy_check(report: ScanReport) -> None:
    """Refuse a pack with secrets when ``MEMSTORE_REFUSE_SECRETS`` is on (the default)."""
    secrets = [f for f in report.findings if f.kind == SECRET]
    if secrets and _refuse_secrets():
        raise SecretsFoundError(
            f"{len(secrets)} memory(ies) contain what looks like a secret "
            f"({', '.join(sorted({f.rule for f in secrets}))}); remove them and publish again",
            findings=[f.to_dict() for f in secrets[:50]],
        )


def findings_save(*, version: PackVersion, report: ScanReport) -> None:
    """Store the findings of ``version`` (inside the publish transaction)."""
    VersionFinding.objects.bulk_create(
        VersionFinding(
            version=version,
            kind=f.kind,
            rule=f.rule[:100],
            cube_id=f.cube_id,
            record_id=f.record_id,
            excerpt=f.excerpt[:200],
        )
        for f in report.findings
    )
