"""Does this environment hold exactly what requirements/ locks?

Run with the virtualenv's interpreter (``.venv/bin/python scripts/lock_check.py``):
it compares the installed distributions (``importlib.metadata``, what ``pip
freeze`` lists) with ``requirements/lock.txt`` and ``requirements/nodeps.txt``
and fails with one line per difference: a locked package missing or at another
version, or a package the lock does not name. ``--extras`` only prints the
names of unlocked packages (``scripts/bootstrap`` removes them).

The installer's own tools (pip, and the project itself, installed editable)
are not compared. Not here: whether the lock matches pyproject.toml (that is
``scripts/lock --check``, which resolves again with uv).
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = (ROOT / "requirements" / "lock.txt", ROOT / "requirements" / "nodeps.txt")
NOT_COMPARED = {"pip", "memstore"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def canonical(name: str) -> str:
    """PEP 503 normalised name: the same package however it is spelled."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for lock in LOCKS:
        for line in lock.read_text().splitlines():
            match = _PIN.match(line)
            if match:
                pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[canonical(name)] = dist.version
    return found


def differences(pins: dict[str, str], have: dict[str, str]) -> list[str]:
    problems = []
    for name, version in sorted(pins.items()):
        if name not in have:
            problems.append(f"missing: {name}=={version}")
        elif have[name] != version:
            problems.append(f"wrong version: {name} {have[name]} installed, {version} locked")
    for name in sorted(set(have) - set(pins) - NOT_COMPARED):
        problems.append(f"not in the lock: {name}=={have[name]}")
    return problems


def main(argv: list[str]) -> int:
    pins, have = locked(), installed()
    if "--extras" in argv:
        print(" ".join(sorted(set(have) - set(pins) - NOT_COMPARED)))
        return 0
    problems = differences(pins, have)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("the environment differs from requirements/: run scripts/bootstrap", file=sys.stderr)
        return 1
    print(f"environment matches the lock ({len(pins)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
