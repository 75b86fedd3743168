"""The registry's publish-time scan findings reach ``memos publish``: parsed and printed."""

from __future__ import annotations

from typing import Any

import pytest

from runtime._wire import PublishResult, parse_publish_result
from runtime.cli import registry_cmds

ANSWER: dict[str, Any] = {
    "name": "acme/tips",
    "version": "1.0.0",
    "sha256": "0" * 64,
    "size": 10,
    "signed_by": [],
    "ingest": {"status": "pending"},
    "url": "/api/v1/packs/acme/tips/versions/1.0.0",
    "findings": [
        {"kind": "personal_data", "rule": "email", "cube_id": "notes", "record_id": "m3",
         "excerpt": "bo*********om"},
        "junk",
    ],
}  # fmt: skip


def test_findings_are_parsed_and_an_older_registry_has_none() -> None:
    result = parse_publish_result(ANSWER)
    assert [(f.kind, f.record_id, f.excerpt) for f in result.findings] == [
        ("personal_data", "m3", "bo*********om")
    ]
    older = {k: v for k, v in ANSWER.items() if k != "findings"}
    assert parse_publish_result(older).findings == ()


def test_publish_output_lists_each_finding(capsys: pytest.CaptureFixture[str]) -> None:
    result: PublishResult = parse_publish_result(ANSWER)
    registry_cmds._print_findings(result)
    printed = capsys.readouterr().err
    assert "scan found 1 thing(s) to check" in printed
    assert "personal_data" in printed and "notes/m3: email bo*********om" in printed
