"""Issue 17 item 7: docker/compose.yaml scales (``up --scale web=N --scale worker=M``).

What breaks scaling is easy to reintroduce and invisible until the day someone scales:
a ``container_name`` or host port on a scaled service (the second replica cannot start),
``migrate`` moved into the entry point (N replicas race the same migration), Celery beat
folded into the worker (M beats enqueue every periodic task M times), or nginx resolving
``web`` once at start (new replicas never get traffic). These tests read the files as
compose and nginx would; they do not run Docker (no daemon where the suite runs).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from server.config import REPO_ROOT

DOCKER = REPO_ROOT / "docker"
SCALED = ("web", "worker")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text("utf-8"))
    return dict(compose["services"])


def entrypoint_branch(role: str) -> str:
    """The shell of one ``case`` branch of docker/entrypoint.sh (``web)`` ... ``;;``)."""
    script = (DOCKER / "entrypoint.sh").read_text("utf-8")
    match = re.search(rf"^\s*{role}\)\n(.*?);;", script, re.MULTILINE | re.DOTALL)
    assert match, f"entrypoint.sh has no {role}) branch"
    return match.group(1)


@pytest.mark.parametrize("name", SCALED)
def test_a_scaled_service_has_no_fixed_name_or_host_port(
    services: dict[str, Any], name: str
) -> None:
    assert "container_name" not in services[name]
    assert not services[name].get("ports"), "a second replica could not bind the same port"


@pytest.mark.parametrize("name", [*SCALED, "beat"])
def test_replicas_start_after_the_one_shot_migration(services: dict[str, Any], name: str) -> None:
    assert services[name]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert services[name]["command"] == [name]
    assert "migrate" not in entrypoint_branch(name)


def test_the_migration_runs_once_and_is_not_restarted(services: dict[str, Any]) -> None:
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert "manage.py migrate" in entrypoint_branch("migrate")


def test_beat_is_its_own_single_service_and_no_worker_embeds_it(services: dict[str, Any]) -> None:
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "celery -A server beat" in entrypoint_branch("beat")
    worker = entrypoint_branch("worker")
    assert "celery -A server worker" in worker
    assert not re.search(r"\s(-B|--beat)\b", worker)


def test_every_awaited_health_has_a_check(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} awaits {dependency}"
    for name in [*SCALED, "proxy", "db", "redis", "minio"]:
        assert "healthcheck" in services[name], name


def test_every_replica_shares_one_database_and_one_s3(services: dict[str, Any]) -> None:
    for name in [*SCALED, "beat", "migrate"]:
        env = services[name]["environment"]
        assert "@db:5432/" in env["DATABASE_URL"]
        assert env["MEMSTORE_STORAGE"] == "s3"
        assert env["MEMSTORE_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert "uploads:/var/lib/memstore/uploads" in services[name]["volumes"]
    assert "deploy" not in services["db"] and "deploy" not in services["minio"]


def test_nginx_resolves_every_web_replica_again_and_again() -> None:
    conf = (DOCKER / "nginx.conf").read_text("utf-8")
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", conf, re.MULTILINE)
    upstream = re.search(r"upstream memstore_web \{(.*?)\}", conf, re.DOTALL)
    assert upstream, "no upstream memstore_web"
    assert re.search(r"^\s*zone memstore_web ", upstream.group(1), re.MULTILINE)
    assert re.search(r"^\s*server web:8000 resolve;", upstream.group(1), re.MULTILINE)
    assert "proxy_pass http://memstore_web;" in conf
