"""Settings of the memos runtime, read from the environment in one place.

Environment variables (all optional):

* ``MEMOS_HOME``      where the runtime keeps its cache, engine and config
                      (default: the platform's user data dir, e.g. ~/.local/share/memos)
* ``MEMOS_REGISTRY``  the default registry URL (default http://127.0.0.1:8000)
* ``MEMOS_TOKEN``     an API token for the configured registry (``MEMOS_REGISTRY``);
                      it overrides the stored one and goes to no other registry
* ``MEMOS_DEBUG``     ``1`` shows tracebacks instead of one-line errors
* ``MEMOS_PRINCIPAL`` who the local engine's reads are made as (an agent or user
                      id; default: the login name). Access policies are checked for it.
* ``MEMOS_EMBEDDER``  ``minilm`` (default: all-MiniLM-L6-v2, offline) or ``hash``
                      (a fast deterministic fake for tests and tiny machines)
* ``MEMOS_QUERY_ENCODER`` ``onnx`` (default: MiniLM exported locally to ONNX Runtime for
                      one text, ~2x faster; torch when it cannot be built) or ``torch``
* ``MEMOS_MAINTAIN_HOURS`` run lifecycle maintenance when the engine opens and the
                      last run is older than this many hours (default 24; 0 disables)
* ``MEMOS_MODEL_FINGERPRINT`` the fingerprint digest (``memos kv info`` / MIP section
                      5.3) of the model this runtime runs: installs fetch only that
                      model's KV caches and adapters (``--all`` fetches every one);
                      unset, every blob is fetched

Tokens saved by ``memos login`` live in ``$MEMOS_HOME/config.json`` (mode 0600),
one per registry URL. This module does no I/O at import time.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .credentials import BoundToken, origin_of

__all__ = ["DEFAULT_REGISTRY", "Settings", "forget_token", "load_settings", "save_token"]

DEFAULT_REGISTRY = "http://127.0.0.1:8000"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class Settings:
    home: Path
    registry: str
    token: str | None
    debug: bool
    principal: str | None = None
    embedder: str = "minilm"
    maintain_hours: float = 24.0
    model_fingerprint: str | None = None
    query_encoder: str = "onnx"

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE

    def token_for(self, registry: str) -> str | None:
        """The token to send to ``registry``, bound to its origin
        (:class:`runtime.credentials.BoundToken`): MEMOS_TOKEN when ``registry`` is the
        configured registry (the same origin), else the one ``memos login`` saved for it,
        else none. A registry a lockfile names gets only its own token."""
        env = os.environ.get("MEMOS_TOKEN")
        if env and origin_of(registry) == origin_of(self.registry):
            return BoundToken(env, self.registry)
        tokens = _read_config(self.config_path).get("tokens", {})
        token = tokens.get(_normalise(registry))
        return BoundToken(token, registry) if isinstance(token, str) else None


def _normalise(registry: str) -> str:
    return registry.rstrip("/")


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_config(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_settings() -> Settings:
    """Read settings from the environment and the config file."""
    home = Path(os.environ.get("MEMOS_HOME") or platformdirs.user_data_dir("memos"))
    config = _read_config(home / CONFIG_FILE)
    registry = os.environ.get("MEMOS_REGISTRY") or config.get("registry") or DEFAULT_REGISTRY
    token = os.environ.get("MEMOS_TOKEN") or None
    if token is None:
        saved = config.get("tokens", {}).get(_normalise(str(registry)))
        token = saved if isinstance(saved, str) else None
    return Settings(
        home=home,
        registry=_normalise(str(registry)),
        token=token,
        debug=os.environ.get("MEMOS_DEBUG", "") not in ("", "0"),
        principal=os.environ.get("MEMOS_PRINCIPAL") or _login_name(),
        embedder=(os.environ.get("MEMOS_EMBEDDER") or "minilm").lower(),
        maintain_hours=_float_env("MEMOS_MAINTAIN_HOURS", 24.0),
        model_fingerprint=(os.environ.get("MEMOS_MODEL_FINGERPRINT") or "").lower() or None,
        query_encoder=(
            "torch" if (os.environ.get("MEMOS_QUERY_ENCODER") or "").lower() == "torch" else "onnx"
        ),
    )


def _login_name() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def save_token(settings: Settings, registry: str, token: str, *, make_default: bool = True) -> None:
    """Store ``token`` for ``registry`` (and make it the default registry)."""
    config = _read_config(settings.config_path)
    tokens = config.setdefault("tokens", {})
    tokens[_normalise(registry)] = token
    if make_default:
        config["registry"] = _normalise(registry)
    _write_config(settings.config_path, config)


def forget_token(settings: Settings, registry: str) -> bool:
    config = _read_config(settings.config_path)
    removed = config.get("tokens", {}).pop(_normalise(registry), None) is not None
    _write_config(settings.config_path, config)
    return removed
