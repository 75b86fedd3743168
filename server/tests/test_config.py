"""Settings from the environment: the shared cache of rate limits (CACHE_URL / REDIS_URL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from server.config import REPO_ROOT, cache_settings, load_config

LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
REDIS = "django.core.cache.backends.redis.RedisCache"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("CACHE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return monkeypatch


def _backend() -> Any:
    return cache_settings(load_config().cache_url)["default"]


def test_the_cache_is_per_process_memory_by_default(env: pytest.MonkeyPatch) -> None:
    assert _backend()["BACKEND"] == LOCMEM
    env.setenv("CACHE_URL", "locmem://")
    assert _backend()["BACKEND"] == LOCMEM


def test_cache_url_or_redis_url_switch_the_cache_to_redis(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", "redis://redis:6379/1")
    assert _backend() == {
        "BACKEND": REDIS,
        "LOCATION": "redis://redis:6379/1",
        "KEY_PREFIX": "memstore",
    }
    env.setenv("CACHE_URL", "rediss://cache.internal:6380/2")  # CACHE_URL wins
    assert _backend()["LOCATION"] == "rediss://cache.internal:6380/2"


def test_an_unknown_cache_scheme_is_refused_at_start_up(env: pytest.MonkeyPatch) -> None:
    env.setenv("CACHE_URL", "memcached://127.0.0.1:11211")
    with pytest.raises(ValueError, match="memcached"):
        _backend()


def test_django_settings_read_the_cache_from_the_environment(tmp_path: Path) -> None:
    code = "from django.conf import settings; import json; print(json.dumps(settings.CACHES))"
    base = {k: v for k, v in os.environ.items() if k not in ("CACHE_URL", "REDIS_URL")}
    base.update(DJANGO_SETTINGS_MODULE="server.settings", MEMSTORE_DATA_DIR=str(tmp_path))

    def caches_with(**extra: str) -> Any:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**base, **extra},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out)["default"]

    assert caches_with()["BACKEND"] == LOCMEM
    redis = caches_with(CACHE_URL="redis://cache:6379/1")
    assert redis["BACKEND"] == REDIS and redis["LOCATION"] == "redis://cache:6379/1"


def test_the_number_of_proxies_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMSTORE_NUM_PROXIES", raising=False)
    assert load_config().num_proxies == 0  # no proxy: X-Forwarded-For is never trusted
    monkeypatch.setenv("MEMSTORE_NUM_PROXIES", "1")
    assert load_config().num_proxies == 1
