"""Textback settings: one module, every deployment choice read from the environment.

Bad values fail at start-up with a message naming the variable, never later at request time.
"""

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TEXTBACK_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# The suite selects the in-memory SMS backend and runs tasks inline; everything else is the same.
TESTING = "pytest" in sys.modules


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def _local_secret_key() -> str:
    """A per-checkout key kept in var/, so sessions survive restarts and no key is committed."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
if os.environ.get("TWILIO_AUTH_TOKEN") and not os.environ.get("SECRET_KEY"):
    # With real credentials this is a deployment: every web server and worker must share one key.
    raise ImproperlyConfigured("Set SECRET_KEY: Twilio credentials are set, so this is not a demo.")
SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = env_int("PORT", 8000)
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", f"http://{HOST}:{PORT}").rstrip("/")
_public = urlsplit(PUBLIC_BASE_URL)
if _public.scheme not in {"http", "https"} or not _public.hostname or _public.path:
    raise ImproperlyConfigured(
        f"PUBLIC_BASE_URL must be scheme://host[:port] with no path, not {PUBLIC_BASE_URL!r}"
    )
if TESTING:
    PUBLIC_BASE_URL = "http://testserver"

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "").split(",")
    if h.strip()
] or [_public.hostname, "127.0.0.1", "localhost", "testserver"]
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_q",
    "django_htmx",
    "template_partials",
    "allauth",
    "allauth.account",
    "routing",
    "compliance",
    "leads",
    "crm",
    "inbox",
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
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "textback_site.urls"
ASGI_APPLICATION = "textback_site.asgi.application"
WSGI_APPLICATION = "textback_site.wsgi.application"

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
                "textback_site.context_processors.product",
            ],
        },
    }
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'textback.sqlite3'}"
try:
    _db = dj_database_url.parse(DATABASE_URL)
except Exception as exc:  # dj-database-url raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent webhooks queue for it instead of
    # failing with "database is locked" when a reader tries to upgrade; WAL lets reads proceed.
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    if TESTING:
        # A file, not memory: the browser tests' ASGI server answers from its own threads, and
        # each thread's connection must see the same database. One file per test process, so
        # two test runs never share one.
        _db["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    if sys.argv[1:2] == ["qcluster"]:
        # The worker forks processes (and re-forks them on recycle); a pool's connections and
        # threads must not be inherited across a fork, while one connection per process is safe.
        _db["CONN_MAX_AGE"] = 60
        _db["CONN_HEALTH_CHECKS"] = True
    else:
        # Under ASGI each request runs in its own thread; a pool keeps connections warm without
        # leaking one per thread the way CONN_MAX_AGE would.
        _db["CONN_MAX_AGE"] = 0
        _db["OPTIONS"] = {"pool": {"min_size": 2, "max_size": env_int("DB_POOL_SIZE", 20)}}
    # PostgreSQL's JIT compiles a costly plan before running it: over a second for a dashboard
    # query that runs in half that. Short queries never reach its threshold; it only ever costs here.
    # random_page_cost 1.1 is SSD storage's (the default 4 is for spinning disks): with it the
    # planner looks up a few thousand leads by key instead of hashing all of them.
    _db.setdefault("OPTIONS", {})["options"] = "-c jit=off -c random_page_cost=1.1"
else:
    raise ImproperlyConfigured("DATABASE_URL must be sqlite:///... or postgres://...")
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: channel layer and task broker -----------------------------------------------------
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{EMBEDDED_REDIS_SOCKET}"
if urlsplit(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
    raise ImproperlyConfigured(f"REDIS_URL must be redis://, rediss:// or unix://, not {REDIS_URL!r}")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # Each test run gets its own groups, so two runs sharing a Redis never hear each other.
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": f"textback:test{os.getpid()}:" if TESTING else "textback:",
            # Every socket of one daphne shares one Redis list; a burst past the default 100
            # would drop live updates (pages catch up on reconnect, but not before).
            "capacity": 1000,
        },
    }
}

# Shared by every process, so allauth's login rate limits hold across several web servers.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if TESTING
    else {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "textback"}
}

Q_CLUSTER = {
    "name": "textback-test" if TESTING else "textback",
    "workers": env_int("WORKERS", 4),
    "recycle": 5000,
    "timeout": 30,
    "retry": 60,
    # Our outbox retries with its own backoff and sweep; the queue must not replay a send.
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": -1,
    "catch_up": False,
    "redis": REDIS_URL,
    "sync": TESTING,
}

# --- twilio ---------------------------------------------------------------------------------
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
if bool(TWILIO_ACCOUNT_SID) != bool(TWILIO_AUTH_TOKEN):
    # Half a configuration would silently fall back to demo mode and its public token.
    raise ImproperlyConfigured("Set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or neither (demo mode).")
DEMO_MODE = not (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)
if DEMO_MODE:
    # A fixed, public token: the phone simulator signs its webhooks with it exactly as Twilio
    # would with a real one. It protects nothing, so demo mode never talks to Twilio.
    TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    TWILIO_AUTH_TOKEN = "demo-token-not-secret"
# Who reads callers' answers to the qualification questions (leads.qualification.Qualifier).
QUALIFIER = os.environ.get("QUALIFIER", "leads.qualification.RuleBasedQualifier")
TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/")
SMS_BACKEND = os.environ.get("SMS_BACKEND") or (
    "leads.sms.console.ConsoleBackend" if DEMO_MODE else "leads.sms.twilio.TwilioBackend"
)
VOICE_BACKEND = os.environ.get("VOICE_BACKEND") or (
    "leads.voice.console.ConsoleBackend" if DEMO_MODE else "leads.voice.twilio.TwilioBackend"
)
if TESTING:
    SMS_BACKEND = "leads.sms.locmem.LocmemBackend"
    VOICE_BACKEND = "leads.voice.locmem.LocmemBackend"
    TWILIO_AUTH_TOKEN = "test-auth-token"

# --- auth and pages ---------------------------------------------------------------------------
# People sign in with their email; accounts come from the brokerage import, never from sign-up.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "inbox.accounts.BrokerageAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Textback <no-reply@textback.invalid>")
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))  # seconds; a hung mail server must not hold a worker
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# Twilio's bodies are small; anything much larger is not Twilio.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _public.scheme == "https"
if _public.scheme == "https":
    # An HTTPS address in front of daphne means a TLS-terminating proxy that says so in this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _public.scheme == "https" and not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 3600 if _public.scheme == "https" else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Whether every subdomain is HTTPS-only, and preloading, are the domain owner's call, not the app's.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Per-request chatter (every REST call, every enqueued task) would bury what matters.
    "loggers": {
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        "twilio.http_client": {"level": "WARNING"},
        "django-q": {"level": "WARNING"},
    },
}

# --- product rules ------------------------------------------------------------------------------
# Outbox: how long a row may sit in queued/sending before the sweep hands it to a worker again.
OUTBOX_STUCK_SECONDS = env_int("OUTBOX_STUCK_SECONDS", 120)
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 6)
