"""Running the real ``memos`` CLI in a subprocess (imported by the tests here; a unique module name,
so it never collides with another folder's ``conftest``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEMOS = [sys.executable, "-c", "from runtime.cli.main import run; run()"]


def memos(
    args: list[str], env: dict[str, str], cwd: Path, *, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*MEMOS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"memos {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
