"""Issue 13 item 6: settings are validated at start-up (django-environ), one message per
bad value; ``manage.py check --deploy`` is clean with docker/compose.yaml's environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from server.config import REPO_ROOT, ConfigError, load_config

COMPOSE = REPO_ROOT / "docker" / "compose.yaml"
#: What an operator puts in docker/.env (docker/.env.example, with real-looking values).
DOT_ENV = {
    "MEMSTORE_SECRET_KEY": "k3Jx9-vQ2p_Lr8ZtWm4Yc7Hn1Bd6Fs0Ga5Ue2Io9Pq3Rw8Tz4Xy",
    "MEMSTORE_ALLOWED_HOSTS": "registry.example.org",
    "MEMSTORE_CSRF_TRUSTED_ORIGINS": "https://registry.example.org",
    "POSTGRES_PASSWORD": "pg-secret",
    "MINIO_ROOT_USER": "memstore",
    "MINIO_ROOT_PASSWORD": "minio-secret",
    "MEMSTORE_STRIPE_SECRET_KEY": "sk_test_51abcdefghijklmnop",
    "MEMSTORE_STRIPE_WEBHOOK_SECRET": "whsec_abcdefghijklmnop",
    "MEMSTORE_STRIPE_PUBLISHABLE_KEY": "pk_test_51abcdefghijklmnop",
    "EMAIL_URL": "smtp+tls://memstore:mail-secret@smtp.example.org:587",
}
_VAR = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def compose_environment(dot_env: dict[str, str]) -> dict[str, str]:
    """The web service's environment as docker compose would interpolate it."""
    app = yaml.safe_load(COMPOSE.read_text("utf-8"))["x-app"]["environment"]

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if name in dot_env:
            return dot_env[name]
        if kind == "?":
            raise AssertionError(f"compose requires {name}: {rest}")
        return rest or ""

    return {key: _VAR.sub(value, str(raw)) for key, raw in app.items()}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("MEMSTORE_", "EMAIL_URL", "CACHE_URL", "REDIS_URL")) or name == (
            "DATABASE_URL"
        ):
            monkeypatch.delenv(name)
    return monkeypatch


def test_each_bad_value_gets_its_own_message(clean_env: pytest.MonkeyPatch) -> None:
    bad = {
        "MEMSTORE_DEBUG": "maybe",
        "MEMSTORE_URL_TTL": "fifteen",
        "MEMSTORE_MAX_PACK_BYTES": "0",
        "MEMSTORE_SEARCH_MIN_SIMILARITY": "7",
        "MEMSTORE_STORAGE": "ftp",
        "MEMSTORE_PAYMENT_PROVIDER": "paypal",
        "MEMSTORE_STRIPE_SECRET_KEY": "pk_live_pasted_the_wrong_key",
        "MEMSTORE_THROTTLE_ANON": "lots",
        "DATABASE_URL": "mysql://db/memstore",
        "EMAIL_URL": "carrier-pigeon://loft",
        "CACHE_URL": "memcached://127.0.0.1:11211",
    }
    for name, value in bad.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_config()
    problems = caught.value.problems
    assert len(problems) == len(bad)
    for name in bad:
        assert sum(problem.startswith(name) for problem in problems) == 1, name
    assert "pasted_the_wrong_key" not in str(caught.value)  # a key is never echoed whole
    assert "must be a whole number" in str(caught.value)


def test_good_values_are_read(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MEMSTORE_DEBUG", "yes")
    clean_env.setenv("MEMSTORE_URL_TTL", "60")
    clean_env.setenv("EMAIL_URL", "smtp+tls://u:p@mail.example.org:587")
    clean_env.setenv("MEMSTORE_HTTPS", "1")
    config = load_config()
    assert config.debug and config.url_ttl == 60 and config.https
    assert config.email_url.startswith("smtp+tls://")


def test_the_process_does_not_start_with_a_bad_value(tmp_path: Path) -> None:
    env = {**os.environ, "MEMSTORE_DATA_DIR": str(tmp_path), "MEMSTORE_URL_TTL": "-5"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**env, "DJANGO_SETTINGS_MODULE": "server.settings"},
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "MEMSTORE_URL_TTL='-5': must be at least 1" in result.stderr


def test_check_deploy_is_clean_with_the_compose_environment(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MEMSTORE_", "DATABASE_URL", "CACHE_URL", "REDIS_URL", "EMAIL_"))
    }
    env.update(compose_environment(DOT_ENV))
    env["MEMSTORE_DATA_DIR"] = str(tmp_path)  # the image's /var/lib/memstore
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_check_deploy_names_what_a_plain_http_compose_stack_lacks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMSTORE_", "EMAIL_"))}
    env.update(compose_environment({**DOT_ENV, "MEMSTORE_HTTPS": "0"}))
    env["MEMSTORE_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output, output
