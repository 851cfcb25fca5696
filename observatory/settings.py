"""Django settings, all read from the environment through observatory.config (see README, Configuration)."""

from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab

from observatory.config import load_config

CONFIG = load_config()
BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = CONFIG.data_dir

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts
CSRF_TRUSTED_ORIGINS = CONFIG.csrf_trusted_origins
SITE_URL = CONFIG.site_url

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "observatory",
    "ingest",
    "billing",
    "gateway",
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
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into our lockout page
]
AUTHENTICATION_BACKENDS = [
    "observatory.login_throttle.LoginThrottleBackend",  # first: refuses locked-out accounts and addresses
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "observatory.urls"
WSGI_APPLICATION = "observatory.wsgi.application"

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
            ],
            "builtins": ["observatory.templatetags.numbers"],  # `grouped`, on every page without a load tag
        },
    },
]

DATABASES = {"default": CONFIG.database}
EMBEDDED_DATABASE = CONFIG.embedded_database
EMBEDDED_PGDATA = DATA_DIR / "pgdata"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "observatory" / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if CONFIG.production:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # the TLS proxy says the request was https
SECURE_SSL_REDIRECT = CONFIG.ssl_redirect
# Load balancer probes and OTLP exporters inside the network (the Collector of docker-compose posts to web:8000)
# speak plain HTTP; an exporter does not follow a redirect of its POST.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$", r"^v1/(traces|metrics|logs)$", r"^api/public/otel/"]
SECURE_HSTS_SECONDS = CONFIG.hsts_seconds
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_REFERRER_POLICY = "same-origin"

# Login throttling (django-axes): an account, and separately an address, is locked for
# OBSERVATORY_LOGIN_LOCKOUT_MINUTES after OBSERVATORY_LOGIN_FAILURE_LIMIT wrong passwords.
AXES_FAILURE_LIMIT = CONFIG.login_failure_limit
AXES_COOLOFF_TIME = timedelta(minutes=CONFIG.login_lockout_minutes)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "observatory.login_throttle.locked_out"
AXES_CLIENT_IP_CALLABLE = "observatory.login_throttle.client_address"
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HTTP_RESPONSE_CODE = 429
TRUSTED_PROXY_HOPS = CONFIG.trusted_proxy_hops

DATA_UPLOAD_MAX_MEMORY_SIZE = CONFIG.ingest_max_body_bytes
INGEST_MAX_BODY_BYTES = CONFIG.ingest_max_body_bytes
INGEST_MAX_DECOMPRESSED_BYTES = CONFIG.ingest_max_decompressed_bytes
INGEST_RATE_PER_KEY = CONFIG.ingest_rate_per_key  # records per second per API key (0: no limit)
INGEST_BURST_PER_KEY = CONFIG.ingest_burst_per_key
SPOOL_MAX_BYTES = CONFIG.spool_max_bytes  # exports kept on local disk while the database is away (ingest.spool)
SPOOL_DRAIN_IN_BACKGROUND = True
# Trace exports answered first are stored by a writer thread of each web process, several exports to one COPY,
# within this many seconds of their answer (ingest.write_behind); 0: each right after its own answer.
INGEST_BATCH_SECONDS = CONFIG.ingest_batch_ms / 1000
# The gateway (gateway/): upstream hosts allowed beside the providers' public APIs and each organization's own list,
# the key that encrypts stored provider credentials (empty: $OBSERVATORY_HOME/gateway.key), the largest request body.
GATEWAY_ALLOWED_HOSTS = CONFIG.gateway_allowed_hosts
GATEWAY_PRIVATE_NETWORKS = CONFIG.gateway_private_networks  # internal networks an organization's upstream may be in
GATEWAY_SECRET_KEY = CONFIG.gateway_secret_key
GATEWAY_MAX_BODY_BYTES = CONFIG.gateway_max_body_bytes
REDIS_URL = CONFIG.redis_url  # hard-budget counters shared there (else in PostgreSQL; billing.limits)
GATEWAY_URL = CONFIG.gateway_url  # where clients reach the gateway, as Settings → Gateway shows it
GATEWAY_REDIS_URL = CONFIG.gateway_redis_url  # the response cache shared by gateway processes (empty: PostgreSQL)
RETENTION_DAYS = CONFIG.retention_days
PARTITION_DAYS_AHEAD = 7

EMAIL_HOST = CONFIG.email_host
EMAIL_PORT = CONFIG.email_port
EMAIL_HOST_USER = CONFIG.email_user
EMAIL_HOST_PASSWORD = CONFIG.email_password
EMAIL_USE_TLS = CONFIG.email_use_tls
DEFAULT_FROM_EMAIL = CONFIG.default_from_email
SLACK_WEBHOOK_URL = CONFIG.slack_webhook_url
WEBHOOK_ALLOW_PRIVATE = CONFIG.webhook_allow_private  # alert webhooks to internal addresses (billing.alerts.webhook_guard)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "observatory.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "observatory.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Observatory API",
    "DESCRIPTION": "LLM call records, spend, budgets and recommendations.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Celery: the embedded default is kombu's filesystem transport under the data directory.
CELERY_BROKER_URL = CONFIG.broker_url
if CONFIG.embedded_broker:
    _broker = DATA_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "processed_folder": str(_broker / "processed"),
        "control_folder": str(_broker / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "maintain-partitions": {"task": "ingest.tasks.maintain_partitions", "schedule": crontab(minute=7)},
    "roll-up": {"task": "billing.tasks.roll_up", "schedule": 60.0},
    "gpu-cost": {"task": "billing.tasks.gpu_cost_recent_hours", "schedule": crontab(minute=5)},
    "evaluate-budgets": {"task": "billing.tasks.evaluate_all_budgets", "schedule": 60.0},
    "reconcile-budget-counters": {"task": "billing.tasks.reconcile_budget_counters", "schedule": 60.0},
    "evaluate-alert-rules": {"task": "billing.tasks.evaluate_alert_rules", "schedule": 60.0},
    "deliver-alerts": {"task": "billing.tasks.deliver_pending_alerts", "schedule": 30.0},
    "recommendations": {"task": "billing.tasks.generate_recommendations", "schedule": crontab(hour=3, minute=17)},
    "weekly-digest": {"task": "observatory.tasks.send_weekly_digest",
                      "schedule": crontab(day_of_week="mon", hour=8, minute=0)},
    "purge-gateway-cache": {"task": "gateway.tasks.purge_expired_responses", "schedule": crontab(minute="*/15")},
    "retry-weekly-digests": {"task": "observatory.tasks.retry_weekly_digests", "schedule": crontab(minute="*/10")},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
