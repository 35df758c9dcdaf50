"""Django settings. Every deployment-specific value comes from an environment variable with a safe default.

The embedded defaults (no variables set) give a single-machine installation: SQLite, local image files and an
embedded Celery broker on the local file system. Production sets DATABASE_URL, REDIS_URL and the S3 variables.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from readerstudy.keys import MissingKey, installation_key
from worker.enhance.context import DEFAULT_FACTOR, check_factor

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("READERSTUDY_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    """Reads a boolean environment variable ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("READERSTUDY_DEBUG", False)
# Keys: from the environment; else this installation's own files under var/keys (a one-machine installation, DEBUG,
# makes them on first start); production never makes its own (readerstudy/keys.py).
KEYS_DIR = VAR_DIR / "keys"
_ALLOW_THROWAWAY_KEYS = env_bool("READERSTUDY_ALLOW_INSECURE_KEY", False)  # build steps only: keys never stored
try:
    SECRET_KEY = installation_key(
        "READERSTUDY_SECRET_KEY", KEYS_DIR / "secret-key", may_create=DEBUG, throwaway=_ALLOW_THROWAWAY_KEYS,
        missing=f"READERSTUDY_SECRET_KEY must be set (or {KEYS_DIR / 'secret-key'} present, or READERSTUDY_DEBUG=1 "
                "for a one-machine installation, which makes its own keys under var/keys).",
    )
    # Keyed hashing of UIDs, patient identifiers and date shifts. Changing it changes every remapped UID and case
    # code, so it is separate from SECRET_KEY (which may be rotated) and must be kept for the life of a deployment.
    DEID_SECRET = installation_key(
        "READERSTUDY_DEID_SECRET", KEYS_DIR / "deid-secret", may_create=DEBUG, throwaway=_ALLOW_THROWAWAY_KEYS,
        missing=f"READERSTUDY_DEID_SECRET must be set (or {KEYS_DIR / 'deid-secret'} present). A deployment that "
                "ran before without it used READERSTUDY_SECRET_KEY for de-identification: set it to that same value, "
                "or images uploaded again get new case codes and UIDs.",
    )
except MissingKey as exc:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(str(exc)) from None
# Days by which dates are shifted per case ("remove" blanks dates instead).
DEID_DATE_MODE = os.environ.get("READERSTUDY_DEID_DATE_MODE", "shift")
DEID_MAX_DATE_SHIFT_DAYS = int(os.environ.get("READERSTUDY_DEID_MAX_DATE_SHIFT_DAYS", "365"))
# Deny-by-default de-identification for every site (a site can also ask for it alone): only attributes on the allow-list
# of the instance's SOP class survive (apps/imaging/deid_allow_list.py).
DEID_DENY_BY_DEFAULT = env_bool("READERSTUDY_DEID_DENY_BY_DEFAULT", False)

ALLOWED_HOSTS = env_list("READERSTUDY_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("READERSTUDY_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "auditlog",
    "axes",
    "apps.accounts",
    "apps.institutions",
    "apps.jobs",
    "apps.imaging",
    "apps.privacy",
    "apps.enhancement_models",
    "apps.studies",
    "apps.analysis",
    "apps.audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "readerstudy.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "readerstudy" / "templates"],
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

WSGI_APPLICATION = "readerstudy.wsgi.application"
ASGI_APPLICATION = "readerstudy.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'readerstudy.sqlite3'}"),
        conn_max_age=int(os.environ.get("READERSTUDY_DB_CONN_MAX_AGE", "0")),
        # A kept connection is checked before a request reuses it: after a database restart the first request of
        # every web process would otherwise answer 500 on its dead connection.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process and the worker process share the file.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Repeated failed logins lock that username from that address for a while (django-axes): the login page, the
# admin's and HTTP Basic on the API alike. Not the address alone: a hospital's readers often share one NAT address.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("READERSTUDY_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("READERSTUDY_LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "apps.accounts.authentication.client_address"
AXES_USERNAME_CALLABLE = "apps.accounts.authentication.client_username"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("READERSTUDY_STATIC_ROOT", BASE_DIR / "staticfiles"))
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [FRONTEND_DIST] if FRONTEND_DIST.is_dir() else []

MEDIA_ROOT = Path(os.environ.get("READERSTUDY_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media-not-served/"
# Uploads are staged here (outside the image store) until they are validated and de-identified.
UPLOAD_STAGING_DIR = Path(os.environ.get("READERSTUDY_UPLOAD_STAGING_DIR", VAR_DIR / "staging"))

S3_BUCKET = os.environ.get("READERSTUDY_S3_BUCKET", "")
STORAGES = {
    "default": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": os.environ.get("READERSTUDY_S3_ENDPOINT_URL") or None,
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
            },
        }
        if S3_BUCKET
        else {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}}
    ),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage"
        )
    },
}

# Upload limits: one request, one file and one unpacked archive.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = int(os.environ.get("READERSTUDY_MAX_FILES_PER_REQUEST", "5000"))
INGEST_MAX_FILE_BYTES = int(os.environ.get("READERSTUDY_INGEST_MAX_FILE_BYTES", str(512 * 1024 * 1024)))
INGEST_MAX_ARCHIVE_UNPACKED_BYTES = int(
    os.environ.get("READERSTUDY_INGEST_MAX_ARCHIVE_UNPACKED_BYTES", str(8 * 1024 * 1024 * 1024))
)
INGEST_MAX_ARCHIVE_RATIO = float(os.environ.get("READERSTUDY_INGEST_MAX_ARCHIVE_RATIO", "200"))
INGEST_MAX_ARCHIVE_MEMBERS = int(os.environ.get("READERSTUDY_INGEST_MAX_ARCHIVE_MEMBERS", "100000"))
# DICOMweb STOW-RS: the largest request body, and the largest one processed before answering (larger: queued, 202).
STOW_MAX_BYTES = int(os.environ.get("READERSTUDY_STOW_MAX_BYTES", str(2 * 1024**3)))
STOW_SYNC_MAX_BYTES = int(os.environ.get("READERSTUDY_STOW_SYNC_MAX_BYTES", str(256 * 1024**2)))

# The audit trail (apps/audit) names related objects as people read them (a case code, a site) rather than ids.
AUDITLOG_USE_FK_STRING_REPRESENTATION = True

REST_FRAMEWORK = {
    # HTTP Basic first: it names the challenge of a 401 (a caller with no or wrong credentials); a browser's session
    # is tried when no Authorization header is sent. Reader endpoints use the session only (apps.studies.api).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies are checked for shape (depth, top-level object) before a view reads them (readerstudy.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "readerstudy.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "readerstudy API",
    "DESCRIPTION": "Blinded, multi-site reader studies of MRI image enhancement.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema lists every admin and export endpoint and the conventional/DL enums: staff only, never readers.
    "SERVE_PERMISSIONS": ["apps.accounts.access.IsCoordinatorOrAdmin"],
    # A choice set that several fields share gets one enum name: the status of enhancement and export jobs, the
    # sequence of a series and the sequences of a study.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "apps.jobs.models.JobStatus",
        "SequenceEnum": "apps.imaging.models.Sequence",
    },
}

# Celery: Redis when REDIS_URL is set, otherwise an embedded file-system broker so that a real worker process
# runs without any server.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
# Tasks are acknowledged only once finished (readerstudy/celery.py); with Redis an unacknowledged message goes back
# to the queue only after the visibility timeout, which must be longer than the longest job (an enhancement of a
# large series on a CPU worker takes tens of minutes), or a running job would be delivered to a second worker.
# Default 6 h: a message lost with a killed worker is not waited for that long, because the stale-job sweep
# (apps/jobs/lifecycle.py) re-queues the job itself once its heartbeat stops.
CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("READERSTUDY_CELERY_VISIBILITY_TIMEOUT", str(6 * 3600)))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("READERSTUDY_CELERY_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True

# The job lifecycle (apps/jobs/lifecycle.py). A running job's worker beats every JOB_HEARTBEAT_SECONDS; a job with
# no beat for JOB_STALE_SECONDS is taken as stopped (its worker died) and re-queued, or failed once it was started
# JOB_MAX_ATTEMPTS times. Every worker sweeps for such jobs when it starts and every JOB_SWEEP_SECONDS; a job still
# queued JOB_REQUEUE_SECONDS after it was sent is sent again (its message may have died with a worker).
JOB_HEARTBEAT_SECONDS = float(os.environ.get("READERSTUDY_JOB_HEARTBEAT_SECONDS", "30"))
JOB_STALE_SECONDS = float(os.environ.get("READERSTUDY_JOB_STALE_SECONDS", "300"))
JOB_SWEEP_SECONDS = float(os.environ.get("READERSTUDY_JOB_SWEEP_SECONDS", "60"))
JOB_REQUEUE_SECONDS = float(os.environ.get("READERSTUDY_JOB_REQUEUE_SECONDS", "900"))
JOB_MAX_ATTEMPTS = int(os.environ.get("READERSTUDY_JOB_MAX_ATTEMPTS", "3"))
if JOB_STALE_SECONDS < 3 * JOB_HEARTBEAT_SECONDS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "READERSTUDY_JOB_STALE_SECONDS must be at least three heartbeats (READERSTUDY_JOB_HEARTBEAT_SECONDS), "
        "or live jobs would be taken for stopped ones."
    )

# With Redis, a shared cache fronts the session table, saving a query on every request; without it sessions stay
# in the database only, which is correct for any number of processes.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

SESSION_COOKIE_HTTPONLY = True
# A login lasts a working day, not Django's two weeks: the site shows patient images (readers' scores autosave).
SESSION_COOKIE_AGE = int(float(os.environ.get("READERSTUDY_SESSION_HOURS", "12")) * 3600)
SESSION_COOKIE_SECURE = env_bool("READERSTUDY_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
BEHIND_PROXY = env_bool("READERSTUDY_BEHIND_TLS_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
REFERRER_POLICY = "same-origin"
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("READERSTUDY_LOG_LEVEL", "INFO")},
    "loggers": {"pynetdicom": {"level": "WARNING"}},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Enhancement: "" picks CUDA when available, else CPU; "cpu" or "cuda" forces one.
ENHANCE_DEVICE = os.environ.get("READERSTUDY_ENHANCE_DEVICE", "")
# A study must be enhanced by one model throughout: pin it here, as a built-in version (ceunet-c16-v2) or NAME@VERSION
# of a registered model (apps.enhancement_models); empty means the built-in default, inference.MODEL_VERSION.
ENHANCE_MODEL = os.environ.get("READERSTUDY_ENHANCE_MODEL", "")
# Noise-reduction factor of every enhancement job made on upload (1 to 100); the default is the factor the model
# is tuned for. 1 would make identity copies, which QA fails: ask for it per job, never as the deployment default.
try:
    ENHANCE_FACTOR = check_factor(float(os.environ.get("READERSTUDY_ENHANCE_FACTOR", DEFAULT_FACTOR)))
except ValueError as exc:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"READERSTUDY_ENHANCE_FACTOR: {exc}") from exc
# Registered enhancement models (ONNX): the largest file an admin may upload, and how long the model may take on
# the phantom series it is tried on before it is registered (on the web host's CPU, one thread).
MAX_MODEL_BYTES = int(os.environ.get("READERSTUDY_MAX_MODEL_BYTES", str(200 * 1024 * 1024)))
MODEL_CHECK_SECONDS = float(os.environ.get("READERSTUDY_MODEL_CHECK_SECONDS", "60"))
# The address space the check's child process may use (Python, torch and onnxruntime take about 0.7 GB of it), so
# an uploaded model that allocates without bound is refused instead of exhausting the web host's memory.
MODEL_CHECK_MEMORY_MB = int(os.environ.get("READERSTUDY_MODEL_CHECK_MEMORY_MB", "4096"))
# Load and run the model once when a worker process of the "gpu" queue starts, so the first series pays no
# start-up cost (on an H200: seconds of cuDNN tuning): "auto" (default) warms up where CUDA is available,
# "1" always, "0" never.
ENHANCE_WARMUP = os.environ.get("READERSTUDY_ENHANCE_WARMUP", "auto").strip().lower()
if ENHANCE_WARMUP not in {"auto", "1", "0"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"READERSTUDY_ENHANCE_WARMUP must be auto, 1 or 0, not {ENHANCE_WARMUP!r}.")
