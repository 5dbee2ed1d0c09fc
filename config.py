"""Configuration read from the environment (12-factor).

The names are the public contract in API.md; defaults run the embedded setup on a
laptop: a SQLite file under instance/ and jobs run inline.
"""

import os
import secrets
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent / "instance"


def database_url(url: str | None) -> str:
    """Normalise a DATABASE_URL so that PostgreSQL goes through psycopg 3."""
    if not url:
        INSTANCE_DIR.mkdir(exist_ok=True)
        return f"sqlite:///{INSTANCE_DIR / 'rewards.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def webhook_secrets(raw: str | None) -> list[str]:
    return [s.strip() for s in (raw or "").split(",") if s.strip()]


class Config:
    ENV_NAME = "base"
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("DATABASE_URL"))
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL") or None
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY") or None
    STRIPE_WEBHOOK_SECRETS = webhook_secrets(os.environ.get("STRIPE_WEBHOOK_SECRET"))
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE") or None

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    HSTS = False
    MAX_CONTENT_LENGTH = 1024 * 1024
    LOGIN_LIMIT = "5 per minute"
    # If the limits' Redis is unreachable, count in memory rather than fail the login.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    # How long the in-process referral-code cache trusts an entry, in seconds.
    CODE_CACHE_SECONDS = 30
    # Clicks queued in Redis are moved into the database in batches of this size.
    CLICK_BATCH = 2000
    # The redirect sends clicks to Redis in batches this often, in seconds; 0 sends each
    # click before answering (rewards/attribution/click_sender.py; docs/performance.md).
    CLICK_FLUSH_SECONDS = float(os.environ.get("CLICK_FLUSH_SECONDS", "0.05"))
    INLINE_JOBS = False  # set from REDIS_URL in create_app
    # Werkzeug's method for new password hashes. A stored hash names its own method, so a
    # hash made under another setting still verifies.
    PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a method name, not a password

    @classmethod
    def ratelimit_storage(cls) -> str:
        return cls.REDIS_URL or "memory://"


class DevelopmentConfig(Config):
    ENV_NAME = "development"
    SECRET_KEY = Config.SECRET_KEY or secrets.token_hex(32)


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key"  # noqa: S105 - a fixed key keeps test cookies stable
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    REDIS_URL = None
    PUBLIC_BASE_URL = "http://rewards.test"
    STRIPE_API_KEY = None
    STRIPE_WEBHOOK_SECRETS: list[str] = []
    STRIPE_API_BASE = None
    CODE_CACHE_SECONDS = 0
    CLICK_FLUSH_SECONDS = 0.0  # a click is in Redis when the redirect has answered
    # One round of PBKDF2: a test account costs microseconds rather than scrypt's tenths of
    # a second. Only this config has it: the base config's scrypt serves everywhere else.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"  # noqa: S105 - a method name


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    HSTS = True


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_env():
    return CONFIGS[os.environ.get("REWARDS_ENV", "development")]
