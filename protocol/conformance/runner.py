"""Run the MIP conformance vectors (1.x and 2.0) against a reader and report pass/fail.

    python -m protocol.conformance                       # this library's reader
    python -m protocol.conformance --reader-command "CMD" # any other implementation
    python -m protocol.conformance --only invalid-symlink --json

For each entry of ``vectors/index.json`` the runner asks a reader for the
outcome and compares it with ``expect``. The exit status is 0 when every
vector passes and 1 otherwise.

Plugging in another implementation: give ``--reader-command``, a shell
command line. For every vector it is run once, with one JSON request on
standard input::

    {"file": "/abs/path/vector.memcube", "kind": "pack" | "manifest",
     "trusted_keys": ["ed25519:<base64>", ...], "threshold": 1,
     "limits": {"max_members": 3, ...}}

and must print one JSON object on standard output: ``{"ok": true,
"manifest_sha256": "<hex>", "signers": ["<keyid>", ...]}`` on success or
``{"ok": false, "code": "<stable error code>", "message": "..."}`` on
failure. A ``pack`` vector is read completely (extracting into a fresh
temporary folder), then, when ``trusted_keys`` is not empty, its signatures
are verified with ``threshold``; ``signers`` are the trusted key ids whose
signatures verify, sorted. A ``manifest`` vector is a standalone manifest file
(any JSON spelling), validated and re-encoded canonically; ``manifest_sha256``
is the sha256 of its RFC 8785 bytes. ``limits`` overrides the SPEC.md default
reading limits by name. ``python -m protocol.conformance --as-reader`` is
this library behind that same interface.

Not here: writing the vectors (generate.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.archive import ReadLimits, read_pack
from protocol.errors import MIPError
from protocol.manifest import Manifest
from protocol.signing import PublicKey
from protocol.trust import verify_or_raise

__all__ = ["VECTORS_DIR", "Outcome", "default_reader", "main", "run_vectors"]

VECTORS_DIR = Path(__file__).with_name("vectors")

Reader = Callable[[Mapping[str, Any]], dict[str, Any]]


def default_reader(request: Mapping[str, Any]) -> dict[str, Any]:
    """This library as a conformance reader (see the module docstring for the protocol)."""
    path = Path(request["file"])
    try:
        if request["kind"] == "manifest":
            manifest = Manifest.from_bytes(path.read_bytes())
            digest = hashlib.sha256(manifest.canonical_bytes()).hexdigest()
            return {"ok": True, "manifest_sha256": digest}
        limits = ReadLimits(**request.get("limits", {}))
        with tempfile.TemporaryDirectory(prefix="mip-conformance-") as tmp:
            pack = read_pack(path, target=Path(tmp) / "pack", limits=limits)
        signers: list[str] = []
        keys = [PublicKey.from_text(text) for text in request.get("trusted_keys", [])]
        if keys:
            result = verify_or_raise(
                pack.manifest_bytes, pack.signatures, keys, threshold=request.get("threshold", 1)
            )
            signers = sorted(result.valid)
        digest = hashlib.sha256(pack.manifest_bytes).hexdigest()
        return {"ok": True, "manifest_sha256": digest, "signers": signers}
    except MIPError as exc:
        return {"ok": False, "code": exc.code, "message": exc.message}


def command_reader(command: str) -> Reader:
    """A reader that runs ``command`` once per vector (JSON request in, JSON result out)."""
    argv = shlex.split(command)

    def read(request: Mapping[str, Any]) -> dict[str, Any]:
        done = subprocess.run(
            argv,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        try:
            result = json.loads(done.stdout)
        except ValueError:
            return {"ok": False, "code": "runner.bad_reader_output", "message": done.stderr[-500:]}
        return (
            result
            if isinstance(result, dict)
            else {"ok": False, "code": "runner.bad_reader_output"}
        )

    return read


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    expected: str
    got: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "expected": self.expected,
            "got": self.got,
        }


def _judge(entry: Mapping[str, Any], result: Mapping[str, Any]) -> Outcome:
    expect = entry["expect"]
    name = entry["name"]
    if expect["outcome"] == "error":
        got = "ok" if result.get("ok") else str(result.get("code"))
        return Outcome(name, got == expect["code"], expect["code"], got)
    if not result.get("ok"):
        return Outcome(name, False, "ok", f"{result.get('code')}: {result.get('message', '')}")
    problems = []
    if result.get("manifest_sha256") != expect["manifest_sha256"]:
        problems.append(f"manifest_sha256 {result.get('manifest_sha256')}")
    if entry["kind"] == "pack" and sorted(result.get("signers", [])) != expect["signers"]:
        problems.append(f"signers {result.get('signers')}")
    return Outcome(name, not problems, "ok", "ok" if not problems else "; ".join(problems))


def run_vectors(
    reader: Reader = default_reader,
    *,
    vectors: Path = VECTORS_DIR,
    only: Sequence[str] = (),
) -> list[Outcome]:
    """Run every vector of ``vectors/index.json`` (or those in ``only``) through ``reader``."""
    index = json.loads((vectors / "index.json").read_text("utf-8"))
    outcomes = []
    for entry in index["vectors"]:
        if only and entry["name"] not in only:
            continue
        request = {
            "file": str((vectors / entry["file"]).resolve()),
            "kind": entry["kind"],
            "trusted_keys": entry["trusted_keys"],
            "threshold": entry["threshold"],
            "limits": entry["limits"],
        }
        outcomes.append(_judge(entry, reader(request)))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m protocol.conformance",
        description="Run the MIP conformance vectors (1.x and 2.0) against a reader.",
        epilog='Example: python -m protocol.conformance --reader-command "myreader --mip-json"',
    )
    parser.add_argument("--reader-command", help="shell command of another reader (see runner.py)")
    parser.add_argument(
        "--vectors", type=Path, default=VECTORS_DIR, help="folder holding index.json"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="run only this vector (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument(
        "--as-reader", action="store_true", help="act as a reader: one JSON request on stdin"
    )
    args = parser.parse_args(argv)
    if args.as_reader:
        print(json.dumps(default_reader(json.loads(sys.stdin.read()))))
        return 0
    reader = command_reader(args.reader_command) if args.reader_command else default_reader
    outcomes = run_vectors(reader, vectors=args.vectors, only=tuple(args.only))
    failed = [o for o in outcomes if not o.passed]
    if args.json:
        print(json.dumps([o.to_dict() for o in outcomes], indent=2))
    else:
        for o in outcomes:
            mark = "PASS" if o.passed else "FAIL"
            detail = "" if o.passed else f"  expected {o.expected}, got {o.got}"
            print(f"{mark}  {o.name}{detail}")
        print(f"{len(outcomes) - len(failed)}/{len(outcomes)} vectors passed")
    return 1 if failed or not outcomes else 0
