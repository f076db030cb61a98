"""Settings, all read from the environment (see .env.example for every knob and its default)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = BASE_DIR / ".run"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Signs sessions and preference/unsubscribe links. Production sets SECRET_KEY; bin/run keeps a
# generated one in .run/secret_key. The public placeholder is refused unless DEBUG is on
# (hogsend/checks.py).
_SECRET_KEY_FILE = Path(env("SECRET_KEY_FILE", default=str(RUN_DIR / "secret_key")))
SECRET_KEY = (
    env("SECRET_KEY", default="")
    or (_SECRET_KEY_FILE.read_text().strip() if _SECRET_KEY_FILE.is_file() else "")
    or "dev-only-insecure-key-change-me"
)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute base for links in email (unsubscribe, preference center, tracking).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "hogsend.admin.StudioAdminConfig",  # django.contrib.admin with the Studio site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",  # runserver serves static files the way gunicorn does
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "anymail",
    "contacts",
    "journeys",
    "audiences",
    "emails",
    "operations",
    "integrations",
]

MIDDLEWARE = [
    "operations.middleware.RequestMetricsMiddleware",  # first, so it times the whole request
    "django.middleware.security.SecurityMiddleware",
    # Static files from the web processes themselves, before sessions and auth touch the request.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before CSRF and the rest: answers the events endpoints' CORS preflight for publishable keys.
    "contacts.browser.BrowserCorsMiddleware",
    # Django's session, CSRF, user and message middleware, passed by on the events endpoints
    # (bearer keys, JSON): see hogsend/middleware.py.
    "hogsend.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "hogsend.middleware.CsrfViewMiddleware",
    "hogsend.middleware.AuthenticationMiddleware",
    "hogsend.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hogsend.urls"
WSGI_APPLICATION = "hogsend.wsgi.application"
ASGI_APPLICATION = "hogsend.asgi.application"

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
        },
    },
]

# The project-local PostgreSQL cluster that bin/services starts; production sets DATABASE_URL.
DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default=f"postgres://hogsend@127.0.0.1:{env.int('HOGSEND_PG_PORT', default=54329)}/hogsend",
    ),
}
# 0 under ASGI: each request may run on a fresh thread, and persistent connections would pile up
# per thread. The journey worker keeps its own (single-threaded) connection alive instead.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
# Ingest prepares its statement once per connection (README, "Ingest capacity"); a connection
# pooler that cannot keep prepared statements (PgBouncer before 1.21, or without
# max_prepared_statements, in transaction mode) needs false.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
if DB_PREPARED_STATEMENTS:
    # Django leaves psycopg's prepare_threshold at None, which turns preparing off for every
    # statement, even one that asks for it. Django's own queries are bound client-side and are
    # never prepared whatever the threshold, so this reaches only the statements that ask
    # (prepare=True: ingest's); the threshold is never met by anything else.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
# No ping before each request or journey step (a round trip each): a connection found dead is
# replaced (the journey worker retries a unit that failed on its first statement; the web answers
# that one request 503 and reconnects).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
# Lets two test runs share one PostgreSQL server (e.g. TEST_DATABASE_NAME=test_hogsend_e2e).
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default=None)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default=f"redis://127.0.0.1:{env.int('HOGSEND_REDIS_PORT', default=63799)}/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
    }
}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {
        "task": "journeys.outbox_sweep",
        "schedule": env.float("OUTBOX_SWEEP_SECONDS", default=30.0),
    },
    "emails-sweep": {
        "task": "emails.sweep",
        "schedule": env.float("EMAIL_SWEEP_SECONDS", default=60.0),
    },
    # Pushed events nothing decided: pushed again (journeys/reconcile.py, operations/tasks.py).
    "outbox-reconcile": {
        "task": "operations.outbox_reconcile",
        "schedule": env.float("OUTBOX_RECONCILE_EVERY_SECONDS", default=60.0),
    },
    # Digests whose opener never enrolled: handed on or discarded (journeys/digests.py).
    "digests-sweep": {
        "task": "journeys.digests_sweep",
        "schedule": env.float("DIGESTS_SWEEP_SECONDS", default=300.0),
    },
    # Operations (operations/tasks.py): a beat heartbeat the doctor reads, alert rules, retention.
    "operations-beat-heartbeat": {"task": "operations.beat_heartbeat", "schedule": 30.0},
    "operations-alerts": {
        "task": "operations.alerts_evaluate",
        "schedule": env.float("ALERTS_EVERY_SECONDS", default=60.0),
    },
    # Double opt-in confirmations whose hand-off to Celery was lost (emails/confirmation.py).
    "emails-confirmations-sweep": {"task": "emails.confirmations_sweep", "schedule": 60.0},
    # Segments (audiences/tasks.py): time-based ones often, every one hourly with a size snapshot.
    "audiences-segments-refresh": {
        "task": "audiences.segments_refresh",
        "schedule": env.float("SEGMENTS_REFRESH_SECONDS", default=300.0),
    },
    "audiences-segments-reconcile": {
        "task": "audiences.segments_reconcile",
        "schedule": env.float("SEGMENTS_RECONCILE_SECONDS", default=3600.0),
    },
    "operations-retention": {
        "task": "operations.retention_run",
        "schedule": env.float("RETENTION_EVERY_SECONDS", default=6 * 3600.0),
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files (the Studio's stylesheets, scripts, icons), served by WhiteNoise from the web
# processes, with DEBUG on or off alike: `collectstatic` (bin/run, the Dockerfile) writes them to
# STATIC_ROOT under content-hashed names with gzip copies beside them, and WhiteNoise answers those
# with a one-year immutable cache. Nothing is loaded from a CDN.
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Request bodies above this answer 413; a full 1,000-event batch fits comfortably.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=5 * 1024 * 1024)
EVENTS_BATCH_MAX = 1000

# --- email ---------------------------------------------------------------------------------
# EMAIL_PROVIDER picks the backend (console|smtp|resend|postmark|ses|sendgrid|mailgun) and reads its
# keys from the environment; EMAIL_BACKEND / ANYMAIL still override it outright.
from emails.provider_config import provider_settings  # noqa: E402

EMAIL_PROVIDER = env("EMAIL_PROVIDER", default="console")
_provider_backend, _provider_anymail = provider_settings(EMAIL_PROVIDER, env)
EMAIL_BACKEND = env("EMAIL_BACKEND", default=_provider_backend)
EMAIL_HOST = env("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Hogsend <hello@example.com>")
ANYMAIL = {**_provider_anymail, **env.json("ANYMAIL", default={})}
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
# Each sending thread keeps its provider connection open between sends (emails/connections.py):
# reused while used within this many seconds and for up to this many messages.
EMAIL_CONNECTION_MAX_IDLE_SECONDS = env.float("EMAIL_CONNECTION_MAX_IDLE_SECONDS", default=30.0)
EMAIL_CONNECTION_MAX_MESSAGES = env.int("EMAIL_CONNECTION_MAX_MESSAGES", default=100)
# Single sends render each template and props once, then fill in each email's links
# (emails.delivery.single_render); this many renderings are kept per process.
EMAIL_RENDER_SHAPES = env.int("EMAIL_RENDER_SHAPES", default=256)
# On Django's SMTP backend, single sends generate each message shape's bytes once, then fill in
# each email's values (emails.delivery.single_wire); this many shapes are kept per process.
EMAIL_WIRE_SHAPES = env.int("EMAIL_WIRE_SHAPES", default=256)
# Permanent bounces (since the address last took a delivery) that suppress an address.
EMAIL_BOUNCE_SUPPRESS_THRESHOLD = env.int("EMAIL_BOUNCE_SUPPRESS_THRESHOLD", default=3)
# First retry of a transiently failed send; later ones back off exponentially (Celery task).
EMAIL_RETRY_FIRST_DELAY_SECONDS = env.int("EMAIL_RETRY_FIRST_DELAY_SECONDS", default=5)
# The email sweep (Celery beat, emails.sweep): a row still queued this long lost its delivery (a
# crash before the provider call, a lost retry) and is delivered; longer than the retry backoff.
EMAIL_QUEUED_TIMEOUT_SECONDS = env.float("EMAIL_QUEUED_TIMEOUT_SECONDS", default=900.0)
# A row `sending` this long outlived its process (no provider call takes this long: EMAIL_TIMEOUT);
# it is sent again or marked `unknown` by its category (README: "When a worker dies mid-send").
EMAIL_SENDING_TIMEOUT_SECONDS = env.float("EMAIL_SENDING_TIMEOUT_SECONDS", default=600.0)
EMAIL_SWEEP_BATCH = env.int("EMAIL_SWEEP_BATCH", default=500)
# A held send (quiet hours, a frequency cap) still held this long after its moment missed its
# release task; the sweep releases it.
EMAIL_HELD_GRACE_SECONDS = env.float("EMAIL_HELD_GRACE_SECONDS", default=60.0)
# After this many provider attempts a transient failure is final (the retry task's count, too).
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=8)
# Crash trials only: while this file exists, the first send to get its provider's answer deletes
# it and SIGKILLs its own process before recording the outcome. Empty (off) in production.
EMAIL_FAULT_KILL_AFTER_SEND_FILE = env("EMAIL_FAULT_KILL_AFTER_SEND_FILE", default="")
# Opens and clicks this soon after the send are scanners and prefetchers, not people.
EMAIL_TRACKING_BOT_WINDOW_SECONDS = env.float("EMAIL_TRACKING_BOT_WINDOW_SECONDS", default=2.0)
# How long a preference-center / unsubscribe link in an email keeps working.
PREFERENCE_LINK_MAX_AGE_DAYS = env.int("PREFERENCE_LINK_MAX_AGE_DAYS", default=365)
# How long a semantic link or hosted-answer link in an email keeps working.
ANSWER_LINK_MAX_AGE_DAYS = env.int("ANSWER_LINK_MAX_AGE_DAYS", default=90)
# --- signup forms, double opt-in and the consent ledger ---------------------------------------
# Modules that define hosted signup forms (contacts.signup.define_signup_form).
HOGSEND_SIGNUP_FORM_MODULES = env.list("HOGSEND_SIGNUP_FORM_MODULES", default=["contacts.signup_forms"])
# How long a double opt-in confirmation link works.
CONFIRMATION_LINK_MAX_AGE_HOURS = env.int("CONFIRMATION_LINK_MAX_AGE_HOURS", default=72)
# Contacts the API creates must confirm by email first (doubleOptIn per call overrides it).
CONTACTS_DOUBLE_OPT_IN = env.bool("CONTACTS_DOUBLE_OPT_IN", default=False)

# The send-time policy (emails/policy.py; README "Time zones, quiet hours and frequency caps").
# A contact's time zone is its `timezone` property; without one it is in this zone.
HOGSEND_DEFAULT_TIMEZONE = env("HOGSEND_DEFAULT_TIMEZONE", default="UTC")
# {"marketing": ["21:00", "08:00"], "*": ["22:00", "07:00"]}: sends inside the window, in the
# recipient's zone, are held until it ends. "*" covers every category but transactional mail.
HOGSEND_QUIET_HOURS = env.json("HOGSEND_QUIET_HOURS", default={})
# {"marketing": [[2, "24h"], [5, "7d"]]}: at most 2 per 24 hours and 5 per 7 days per contact.
HOGSEND_FREQUENCY_CAPS = env.json("HOGSEND_FREQUENCY_CAPS", default={})
# Bots: form submissions per IP address and hour; at most one confirmation email per address
# this often; how long a rendered form may wait before it is submitted.
SIGNUP_RATE_LIMIT_PER_HOUR = env.int("SIGNUP_RATE_LIMIT_PER_HOUR", default=20)
SIGNUP_CONFIRMATION_RESEND_MINUTES = env.int("SIGNUP_CONFIRMATION_RESEND_MINUTES", default=10)
SIGNUP_FORM_TOKEN_MAX_AGE_HOURS = env.int("SIGNUP_FORM_TOKEN_MAX_AGE_HOURS", default=24)
# The operator inboxes the shipped recipes page: operator mail, never a contact.
CSM_ALERT_EMAIL = env("CSM_ALERT_EMAIL", default="csm@example.com")
APPROVAL_ALERT_EMAIL = env("APPROVAL_ALERT_EMAIL", default="approvals@example.com")
SUPPORT_ALERT_EMAIL = env("SUPPORT_ALERT_EMAIL", default="support@example.com")
LEAD_ALERT_EMAIL = env("LEAD_ALERT_EMAIL", default="sales@example.com")

# --- journeys ------------------------------------------------------------------------------
# "*" runs every shipped journey; otherwise a comma list of journey ids.
ENABLED_JOURNEYS = env("ENABLED_JOURNEYS", default="*")
# Time compression: every journey duration is divided by this (86400 makes a day last a second).
HOGSEND_TIME_SCALE = env.float("HOGSEND_TIME_SCALE", default=1.0)
# The global control group: this percentage of contacts gets no marketing mail at all (never
# transactional), to measure what mail does; membership is a hash of the contact id and the salt.
HOGSEND_CONTROL_GROUP_PERCENT = env.float("HOGSEND_CONTROL_GROUP_PERCENT", default=0.0)
HOGSEND_CONTROL_GROUP_SALT = env("HOGSEND_CONTROL_GROUP_SALT", default="hogsend-control-group")
# A readout says nothing while a compared group has fewer conversions than this.
HOGSEND_READOUT_MIN_CONVERSIONS = env.int("HOGSEND_READOUT_MIN_CONVERSIONS", default=10)

# --- engine --------------------------------------------------------------------------------
# Empty token: the embedded engine (bin/engine) writes its connection to HOGSEND_ENGINE_FILE.
HATCHET_CLIENT_TOKEN = env("HATCHET_CLIENT_TOKEN", default="")
HOGSEND_ENGINE_FILE = Path(env("HOGSEND_ENGINE_FILE", default=str(RUN_DIR / "engine.json")))
# The Hatchet SDK's logger ("hatchet") logs lines at INFO for every task run a worker starts and
# finishes; HATCHET_TASK_LOG=true keeps them (by default the engine client drops them when it is
# made: journeys/runtime/engine.py, journeys/runtime/sdk_logging.py).
HATCHET_TASK_LOG = env.bool("HATCHET_TASK_LOG", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Modules whose JOURNEYS and TASKS lists are registered at start-up.
HOGSEND_JOURNEY_MODULES = env.list("HOGSEND_JOURNEY_MODULES", default=["journeys.shipped"])
# Modules whose SEGMENTS lists are registered at start-up (audiences.segments.define_segment).
# None by default: a segment announces every contact that enters it (segment.entered), so a
# deployment chooses its own; `audiences.shipped` holds examples of each kind of condition.
HOGSEND_SEGMENT_MODULES = env.list("HOGSEND_SEGMENT_MODULES", default=[])

# --- ingest limits -----------------------------------------------------------------------------
# Per API key and second, shared by every web process through Redis; past them ingest answers 429
# with Retry-After. 0 turns a limit off.
INGEST_RATE_LIMIT_REQUESTS = env.int("INGEST_RATE_LIMIT_REQUESTS", default=1000)
INGEST_RATE_LIMIT_EVENTS = env.int("INGEST_RATE_LIMIT_EVENTS", default=50000)
# Publishable keys (pk_..., events from the browser): requests per second from one address and key,
# on top of the key's own limit above, which all of a page's visitors share.
PUBLIC_RATE_LIMIT_PER_IP = env.int("PUBLIC_RATE_LIMIT_PER_IP", default=20)
# How long a browser may cache a CORS preflight answer of the events endpoints.
BROWSER_CORS_MAX_AGE = env.int("BROWSER_CORS_MAX_AGE", default=600)
# The outbox relay wakes on every NOTIFY from ingest, and at least this often regardless.
OUTBOX_RELAY_POLL_SECONDS = env.float("OUTBOX_RELAY_POLL_SECONDS", default=1.0)
# A pushed triggering event that no journey decided (no run, no skip), or whose custom task never
# recorded its effect, this long after the push is pushed again, at most this many times.
OUTBOX_RECONCILE_AFTER_SECONDS = env.int("OUTBOX_RECONCILE_AFTER_SECONDS", default=600)
OUTBOX_RECONCILE_MAX_REDISPATCHES = env.int("OUTBOX_RECONCILE_MAX_REDISPATCHES", default=3)
# How long past its window an open digest may wait for its run to start before the sweep hands
# it on or discards it (journeys.digests.digests_sweep).
DIGEST_START_GRACE_SECONDS = env.float("DIGEST_START_GRACE_SECONDS", default=600.0)
# Without a mark from an earlier pass (a new deployment, a flushed cache), look back this far.
OUTBOX_RECONCILE_LOOKBACK_SECONDS = env.int("OUTBOX_RECONCILE_LOOKBACK_SECONDS", default=86400)
# How long `runworker` lets in-flight steps finish after SIGTERM before it leaves; parked journeys
# resume on the next worker (the step log makes the replay safe).
WORKER_SHUTDOWN_GRACE_SECONDS = env.float("WORKER_SHUTDOWN_GRACE_SECONDS", default=15.0)
# Threads (each with one persistent database connection) that run a journey worker's database work.
WORKER_DB_THREADS = env.int("WORKER_DB_THREADS", default=8)

# --- operations (doctor, metrics, alerts, retention; see README "Operating Hogsend") ---------------
# Every process (web, worker, Celery) writes its metrics here and a scrape sums them; empty it when
# the whole deployment restarts (bin/run does). Set before anything imports prometheus_client.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default=str(RUN_DIR / "prometheus"))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", PROMETHEUS_MULTIPROC_DIR)
try:
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only tree: the doctor and the first metric will say where to point it
    pass
# Bearer token for /metrics; unset, only loopback clients may scrape.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Operators who receive alert mail (comma list); empty: alerts go to the Studio and destinations only.
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
ALERT_WINDOW_MINUTES = env.int("ALERT_WINDOW_MINUTES", default=60)
# Rates need this many sends in the window before they mean anything.
ALERT_MIN_SENDS = env.int("ALERT_MIN_SENDS", default=100)
ALERT_BOUNCE_RATE = env.float("ALERT_BOUNCE_RATE", default=0.04)  # bulk-sender guidance: < 4 %
ALERT_COMPLAINT_RATE = env.float("ALERT_COMPLAINT_RATE", default=0.003)  # Gmail/Yahoo: < 0.3 %
ALERT_FAILED_SENDS = env.int("ALERT_FAILED_SENDS", default=20)
ALERT_OUTBOX_LAG_SECONDS = env.int("ALERT_OUTBOX_LAG_SECONDS", default=300)
ALERT_JOURNEY_FAILURES = env.int("ALERT_JOURNEY_FAILURES", default=5)
ALERT_DEAD_LETTERS = env.int("ALERT_DEAD_LETTERS", default=1)
# Outbox backlog the doctor calls degraded (older than this) and failing (older than the alert).
DOCTOR_OUTBOX_DEGRADED_SECONDS = env.int("DOCTOR_OUTBOX_DEGRADED_SECONDS", default=60)
# Retention, in days; 0 (the default) keeps forever. Events (never a pending one); the step logs of
# runs that ended this long ago; email logs of ended runs and of transactional mail this old.
RETENTION_EVENTS_DAYS = env.int("RETENTION_EVENTS_DAYS", default=0)
RETENTION_STEPS_DAYS = env.int("RETENTION_STEPS_DAYS", default=0)
RETENTION_EMAILS_DAYS = env.int("RETENTION_EMAILS_DAYS", default=0)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=2000)
# Each web process remembers a verified API key this long; a revocation elsewhere takes effect within it.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)
# Every runworker also runs an outbox relay; off, run `manage.py relay` processes instead.
WORKER_RELAY = env.bool("WORKER_RELAY", default=True)
# How a stored event starts its journeys and custom tasks on the engine. `runs`: the relay creates
# the runs itself, in bulk (the SDK's bulk run API), and pushes an event only when a parked wait
# waits for it; `events`: the relay pushes every triggering event and the engine fans each out to
# the tasks listening on it. Workers and relays must agree (both read this). See README, "Capacity".
ENGINE_START_MODE = env("ENGINE_START_MODE", default="events")
if ENGINE_START_MODE not in ("runs", "events"):
    raise ImproperlyConfigured(f"ENGINE_START_MODE={ENGINE_START_MODE!r}: expected 'runs' or 'events'")

# --- Studio login throttling (django-axes, counted in the database) ----------------------------
# After LOGIN_FAILURE_LIMIT wrong passwords for one account, or from one address, that account or
# address is refused (429) for LOGIN_LOCKOUT_MINUTES, even with the right password.
# `manage.py axes_reset` lifts every lock at once. Behind a proxy, TRUSTED_PROXY_COUNT says how
# many X-Forwarded-For hops to trust (0: the socket's address).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
# /v1 path and query parameters with a NUL or a lone surrogate are a 422 before any view runs.
MIDDLEWARE += ["hogsend.errors.ApiInputGuardMiddleware"]
AUTHENTICATION_BACKENDS = [
    "hogsend.login_throttle.ThrottledLoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT or None
AXES_VERBOSE = False

# --- integrations: webhook sources in, destinations out (README "Integrations") -------------------
# Signing secrets of the webhook sources, by source id (`POST /v1/webhooks/<id>`).
WEBHOOK_SECRETS = {
    "stripe": env("STRIPE_WEBHOOK_SECRET", default=""),  # whsec_... from the Stripe dashboard
    "clerk": env("CLERK_WEBHOOK_SECRET", default=""),  # whsec_... (Svix) from the Clerk dashboard
    "segment": env("SEGMENT_WEBHOOK_SECRET", default=""),  # the Webhooks destination's shared secret
    "posthog": env("POSTHOG_WEBHOOK_SECRET", default=""),  # sent as "Authorization: Bearer <it>"
    **env.json("WEBHOOK_SECRETS", default={}),
}
# Generic JSON sources by field mapping, and modules that call define_webhook_source.
WEBHOOK_GENERIC_SOURCES = env.json("WEBHOOK_GENERIC_SOURCES", default={})
HOGSEND_WEBHOOK_SOURCE_MODULES = env.list("HOGSEND_WEBHOOK_SOURCE_MODULES", default=[])
# The Studio keeps this much of each received body.
WEBHOOK_BODY_SAMPLE_BYTES = env.int("WEBHOOK_BODY_SAMPLE_BYTES", default=8192)
# Seconds between delivery attempts; one more attempt than entries (8), then a dead letter.
INTEGRATIONS_RETRY_SCHEDULE = env.list(
    "INTEGRATIONS_RETRY_SCHEDULE", cast=float, default=[10, 60, 300, 1800, 3600, 3 * 3600, 6 * 3600]
)
INTEGRATIONS_DELIVERY_TIMEOUT_SECONDS = env.float("INTEGRATIONS_DELIVERY_TIMEOUT_SECONDS", default=10.0)
# Destinations kept in settings rather than the Studio: [{"name", "kind", "url", "secret", "event_types"}].
INTEGRATIONS_DESTINATIONS = env.json("INTEGRATIONS_DESTINATIONS", default=[])
CELERY_BEAT_SCHEDULE["integrations-deliveries-sweep"] = {
    "task": "integrations.deliveries_sweep",
    "schedule": env.float("INTEGRATIONS_SWEEP_SECONDS", default=15.0),
}
# Delivered deliveries and received webhook records are deleted after this many days (hourly job).
INTEGRATIONS_DELIVERED_KEEP_DAYS = env.int("INTEGRATIONS_DELIVERED_KEEP_DAYS", default=7)
WEBHOOK_DELIVERIES_KEEP_DAYS = env.int("WEBHOOK_DELIVERIES_KEEP_DAYS", default=30)
CELERY_BEAT_SCHEDULE["integrations-prune"] = {"task": "integrations.prune", "schedule": 3600.0}

# --- Broadcasts (broadcasts/): one-off sends to an audience, drained by Celery workers ----------
INSTALLED_APPS += ["broadcasts"]
# Drains started per broadcast (they share its recipients and its pace; one per Celery process).
BROADCAST_DRAINS = env.int("BROADCAST_DRAINS", default=2)
# A drain task sends batches for this long, then hands on to a fresh task.
BROADCAST_DRAIN_SECONDS = env.float("BROADCAST_DRAIN_SECONDS", default=30.0)
# Recipients per batch (a batch is also about one second of the broadcast's rate).
BROADCAST_BATCH_SIZE = env.int("BROADCAST_BATCH_SIZE", default=200)
# A claim older than this belonged to a worker that died: its recipients go back to pending.
BROADCAST_CLAIM_TIMEOUT_SECONDS = env.float("BROADCAST_CLAIM_TIMEOUT_SECONDS", default=300.0)
# A running broadcast no drain touched for this long gets new drains from the tick.
BROADCAST_STALL_SECONDS = env.float("BROADCAST_STALL_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE["broadcasts-tick"] = {
    "task": "broadcasts.tick",
    "schedule": env.float("BROADCAST_TICK_SECONDS", default=10.0),
}
