"""Django settings for the MemStore site. Values come from :mod:`server.config`."""

from __future__ import annotations

import dj_database_url

from .config import cache_settings, dev_secret_key, email_settings, load_config

CONFIG = load_config()

BASE_DIR = CONFIG.data_dir
DEBUG = CONFIG.debug
SECRET_KEY = CONFIG.secret_key or dev_secret_key(CONFIG.data_dir)
ALLOWED_HOSTS = list(CONFIG.allowed_hosts)
CSRF_TRUSTED_ORIGINS = list(CONFIG.csrf_trusted_origins)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served locally (the docs work offline)
    "memstore.accounts",
    "memstore.storage",
    "memstore.packs",
    "memstore.ingest",
    "memstore.search",
    "memstore.api",
    "memstore.commerce",
    "memstore.tuf",
    "memstore.transparency",
    "frontend",
    "server",  # manage.py memstore_up
    "axes",  # the one login limiter (frontend/ratelimit.py)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lock into the 429 answer
]

ROOT_URLCONF = "server.urls"
WSGI_APPLICATION = "server.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The embedded server (manage.py sets DATABASE_URL) or any PostgreSQL with pgvector.
# Without DATABASE_URL the settings still import (tests point them at their own server).
DATABASES = {
    "default": dj_database_url.parse(
        CONFIG.database_url or "postgresql://postgres@/postgres?host=/nonexistent-run-manage.py",
        conn_max_age=0 if CONFIG.database_url is None else 60,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = CONFIG.data_dir / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing folder

DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024 + 4096  # one upload-session chunk
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "memstore.accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "memstore.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": CONFIG.throttle_anon,
        "user": CONFIG.throttle_user,
        "publish": CONFIG.throttle_publish,
        "metadata": CONFIG.throttle_metadata,
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Who a client is, for throttles and the login limiter: REMOTE_ADDR, or behind N proxies
    # the N-th address from the right of X-Forwarded-For (never one the client wrote itself).
    "NUM_PROXIES": CONFIG.num_proxies,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "MemStore registry API",
    "DESCRIPTION": "Publish, resolve and search signed MIP packs. See memstore/API.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI (/api/v1/docs/) from drf-spectacular-sidecar's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Rate limits (login limiter, DRF throttles) count here: Redis in production (CACHE_URL).
CACHES = cache_settings(CONFIG.cache_url)
# Mail (password resets): EMAIL_URL, e.g. smtp+tls://user:pass@host:587; the console in dev.
_EMAIL = email_settings(CONFIG.email_url)
EMAIL_BACKEND = str(_EMAIL["EMAIL_BACKEND"])
EMAIL_HOST = str(_EMAIL.get("EMAIL_HOST") or "localhost")
EMAIL_PORT = int(str(_EMAIL.get("EMAIL_PORT") or 25))
EMAIL_HOST_USER = str(_EMAIL.get("EMAIL_HOST_USER") or "")
EMAIL_HOST_PASSWORD = str(_EMAIL.get("EMAIL_HOST_PASSWORD") or "")
EMAIL_USE_TLS = bool(_EMAIL.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_EMAIL.get("EMAIL_USE_SSL", False))
DEFAULT_FROM_EMAIL = CONFIG.default_from_email
SERVER_EMAIL = CONFIG.default_from_email

# --- MemStore
MEMSTORE_STORAGE = {
    "backend": CONFIG.storage,
    "local_root": CONFIG.data_dir / "blobs",
    "s3_bucket": CONFIG.s3_bucket,
    "s3_endpoint_url": CONFIG.s3_endpoint_url,
    "s3_public_endpoint_url": CONFIG.s3_public_endpoint_url,
    "s3_region": CONFIG.s3_region,
    "s3_access_key": CONFIG.s3_access_key,
    "s3_secret_key": CONFIG.s3_secret_key,
}
MEMSTORE_UPLOAD_DIR = CONFIG.data_dir / "uploads"
MEMSTORE_MAX_PACK_BYTES = CONFIG.max_pack_bytes
# Payments (memstore/commerce/conf.py): Stripe unless a demo asks for the sandbox.
MEMSTORE_PAYMENT_PROVIDER = CONFIG.payment_provider
MEMSTORE_STRIPE_SECRET_KEY = CONFIG.stripe_secret_key
MEMSTORE_STRIPE_WEBHOOK_SECRET = CONFIG.stripe_webhook_secret
MEMSTORE_STRIPE_API_BASE = CONFIG.stripe_api_base
MEMSTORE_STRIPE_PUBLISHABLE_KEY = CONFIG.stripe_publishable_key
MEMSTORE_STRIPE_JS_URL = CONFIG.stripe_js_url  # empty: Stripe's (or localstripe's) Stripe.js
MEMSTORE_TUF_KEY_DIR = CONFIG.data_dir / "tuf"
MEMSTORE_TUF_ONLINE_KEY = CONFIG.tuf_online_key
MEMSTORE_TUF_DEMO = CONFIG.tuf_demo
MEMSTORE_UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024
# Open (unexpired) upload sessions one user may hold, per kind (pack sessions, blob uploads).
MEMSTORE_MAX_OPEN_UPLOADS = 32
MEMSTORE_URL_TTL = CONFIG.url_ttl
MEMSTORE_EMBEDDING_MODEL = CONFIG.embedding_model
MEMSTORE_ENCODER = CONFIG.encoder
# At least the 100 candidates a search asks for (memstore/search/selectors.py CANDIDATES):
# below that the iterative scan needs extra passes, which read more of the graph and find
# worse neighbours than one pass at 100 (at 100k memories: ef 40 recall 0.952, 2,686
# buffers a query; ef 100 recall 0.985, 2,368 buffers; bench/registry_bench.py).
MEMSTORE_HNSW_EF_SEARCH = 100
MEMSTORE_SEARCH_MIN_SIMILARITY = CONFIG.search_min_similarity
# The publish-time scan (memstore/packs/scanning.py) refuses secrets: in production by default.
MEMSTORE_REFUSE_SECRETS = CONFIG.refuse_secrets if CONFIG.refuse_secrets is not None else not DEBUG

# --- Celery (read by server.celery through the CELERY_ namespace)
CELERY_BROKER_URL = CONFIG.broker_url
CELERY_TASK_DEFAULT_QUEUE = CONFIG.celery_queue
CELERY_TASK_ALWAYS_EAGER = CONFIG.celery_eager
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "requeue-pending-ingestion": {"task": "memstore.ingest.requeue_pending", "schedule": 300.0},
    "collect-unreferenced-blobs": {"task": "memstore.packs.collect_garbage", "schedule": 3600.0},
    "reconcile-pending-payments": {
        "task": "memstore.commerce.reconcile_payments",
        "schedule": 300.0,
    },
    "purge-expired-uploads": {"task": "memstore.packs.purge_expired_uploads", "schedule": 3600.0},
}

# Behind the proxy of docker/compose.yaml (or any TLS-terminating load balancer).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Served over HTTPS (MEMSTORE_HTTPS=1, docker/compose.yaml): redirect HTTP, secure cookies,
# HSTS. What `manage.py check --deploy` asks for; off in development (plain HTTP).
SECURE_SSL_REDIRECT = CONFIG.https
SESSION_COOKIE_SECURE = CONFIG.https
CSRF_COOKIE_SECURE = CONFIG.https
SECURE_HSTS_SECONDS = CONFIG.hsts_seconds if CONFIG.https else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = CONFIG.https
SECURE_HSTS_PRELOAD = CONFIG.https

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO" if not DEBUG else "DEBUG"},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Password logins (web, /admin/, POST /api/v1/auth/tokens) go through django-axes: locked
# per client address with backoff first; account-wide only with a fixed cool-down, and never
# for the account's own addresses, so a stranger cannot lock an account out. See
# frontend/ratelimit.py for why.
AUTHENTICATION_BACKENDS = [
    "frontend.ratelimit.LoginLimitBackend",  # axes' AxesStandaloneBackend
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = "frontend.ratelimit.failure_limit"  # 5 per address; 0 in an attack
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_COOLOFF_TIME = "frontend.ratelimit.cool_off"
AXES_USE_ATTEMPT_EXPIRATION = True  # the lock's end (with backoff) is stored, not recomputed
AXES_RESET_ON_SUCCESS = False  # else a login to your own account resets your count
AXES_CLIENT_IP_CALLABLE = "frontend.ratelimit.client_ip"
AXES_LOCKOUT_CALLABLE = "frontend.ratelimit.lockout_response"
AXES_VERBOSE = False
