"""Configuration read from the environment, validated once at start so a bad value stops the start."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from api.redis_store import SENTINEL_SCHEME, make_client

DEFAULT_ROBOT_CPU_URL = "https://robotstakeover20210903110417.azurewebsites.net/robotcpu"
MIN_SECRET_BYTES = 32
SECRET_FILE = "jwt-secret"
# A rate: 1..999,999,999 requests per (1..999,999 of) a unit, ASCII digits only; the window is
# held to a year below (limits reads "0/minute" as never and "5/0minute" as 5/minute).
_RATE_RE = re.compile(
    r"^\s*[1-9][0-9]{0,8}\s*(/|per)\s*([1-9][0-9]{0,5})?\s*(second|minute|hour|day|month|year)s?\s*$"
)
MAX_RATE_WINDOW_SECONDS = 366 * 86400
# Whole and decimal numbers as operators write them: ASCII digits (int() and float() would also
# take "²", "٨١٠٣" and "1_000", which nothing else reading these settings accepts).
_WHOLE_RE = re.compile(r"^[+-]?[0-9]+$")
_DECIMAL_RE = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
MIN_METRICS_TOKEN_LENGTH = 32
_USERNAME_RE = re.compile(r"^[A-Za-z0-9._-]{3,32}$")


class ConfigError(Exception):
    """Raised with one line per bad environment variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """The rule for a whole-number setting: ASCII digits, low..high (ValueError says which broke).
    gunicorn.conf.py reads GUNICORN_THREADS, which is not an app setting, by it too."""

    def parse(raw: str) -> int:
        if not _WHOLE_RE.match(raw.strip()):
            raise ValueError("must be a number")
        value = int(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"must be a whole number {low}..{high}")
        return value

    return parse


def _seconds(low: int, high: int) -> Callable[[str], timedelta]:
    whole = whole_number(low, high)
    return lambda raw: timedelta(seconds=whole(raw))


def _float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        if not _DECIMAL_RE.match(raw.strip()):
            raise ValueError("must be a number")
        value = float(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"must be a number between {low:g} and {high:g}")
        return value

    return parse


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return raw

    return parse


def _rate(raw: str) -> str:
    parts = [part for part in raw.split(";") if part.strip()]
    if not parts or not all(_RATE_RE.match(part) for part in parts):
        raise ValueError("must be a rate such as '600/minute'")
    if any(item.get_expiry() > MAX_RATE_WINDOW_SECONDS for item in parse_many(raw)):
        raise ValueError("must be a rate over a window of at most a year")
    return raw


def _metrics_token(raw: str) -> str:
    """A bearer secret that /metrics compares without a rate limit: long enough not to guess."""
    if len(raw.strip()) < MIN_METRICS_TOKEN_LENGTH:
        raise ValueError(f"must be at least {MIN_METRICS_TOKEN_LENGTH} characters")
    return raw


def _database_url(raw: str) -> str:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError("is not a database URL") from None
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ValueError("must be a sqlite:// or postgresql+psycopg:// URL")
    return raw


def _redis_url(raw: str) -> str:
    if not raw.startswith((SENTINEL_SCHEME + "://", "redis://", "rediss://")):
        raise ValueError(f"must be a redis://, rediss:// or {SENTINEL_SCHEME}:// URL")
    # Parsed by the client the app will use (nothing is sent yet): what it would refuse at the
    # first request (a port out of range, an option it cannot read) stops the start instead.
    make_client(raw).close()
    return raw


def _http_url(raw: str) -> str:
    if not re.match(r"^https?://[^\s/]+", raw):
        raise ValueError("must be an http:// or https:// URL")
    return raw


def _origins(raw: str) -> list[str]:
    origins = [item.strip() for item in raw.split(",") if item.strip()]
    for origin in origins:
        if not re.match(r"^https?://[^\s/]+$", origin):
            raise ValueError(f"has an origin that is not scheme://host[:port]: {origin!r}")
    return origins


def _username(raw: str) -> str:
    if not _USERNAME_RE.fullmatch(raw):  # match() would let "admin\n" through
        raise ValueError("must be 3-32 characters of A-Z a-z 0-9 . _ -")
    return raw


def _text(raw: str) -> str:
    return raw


def _hidden(_raw: str) -> None:
    """A secret is never written back in an error (logs keep what a start prints)."""
    return None


def _password_hidden(raw: str) -> str:
    """A URL as written, but for its passwords: in the user information (`user:***@host`) and
    in a libpq `password=` parameter."""
    shown = re.sub(r"(//[^/?#@]*?:)[^/?#]*@", r"\1***@", raw)
    return repr(re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", shown))


class Setting(NamedTuple):
    """One environment variable: the app.config key it fills, how its text is parsed (ValueError
    names what is wrong), its default as it would be written in the environment (None: unset,
    which load_settings may resolve from the others), and how a bad value is shown in the error
    (None: not at all)."""

    env: str
    key: str
    parse: Callable[[str], Any]
    default: str | None
    shown: Callable[[str], str | None] = repr


# Every setting read from the environment, in one table: a variable's name, key, rule and default
# live here and nowhere else.
SETTINGS: tuple[Setting, ...] = (
    Setting("APP_ENV", "APP_ENV", _choice("development", "production"), "development"),
    # DATABASE_URL's None: SQLite under instance/; JWT_SECRET_KEY's: the instance secret (not in production).
    Setting("DATABASE_URL", "SQLALCHEMY_DATABASE_URI", _database_url, None, _password_hidden),
    Setting("REDIS_URL", "REDIS_URL", _redis_url, None, _password_hidden),
    Setting("JWT_SECRET_KEY", "JWT_SECRET_KEY", _text, None, _hidden),
    Setting("JWT_ACCESS_TTL", "JWT_ACCESS_TOKEN_EXPIRES", whole_number(30, 86400), "900"),
    Setting("JWT_REFRESH_TTL", "JWT_REFRESH_TOKEN_EXPIRES", whole_number(60, 90 * 86400), str(7 * 86400)),
    Setting("SESSION_MAX_AGE", "SESSION_MAX_AGE", _seconds(60, 365 * 86400), str(30 * 86400)),
    Setting("REFRESH_REUSE_GRACE", "REFRESH_REUSE_GRACE", whole_number(0, 10), "5"),
    Setting("ALLOW_REGISTRATION", "ALLOW_REGISTRATION", _bool, "true"),
    Setting("INFECTION_THRESHOLD", "INFECTION_THRESHOLD", whole_number(1, 1000), "3"),
    Setting("RATELIMIT_DEFAULT", "RATELIMIT_DEFAULT", _rate, "600/minute"),
    Setting("RATELIMIT_AUTH", "RATELIMIT_AUTH", _rate, "10/minute"),
    Setting("TRUSTED_PROXIES", "TRUSTED_PROXIES", whole_number(0, 10), "0"),
    Setting("CORS_ORIGINS", "CORS_ORIGINS", _origins, ""),
    Setting("ROBOT_CPU_URL", "ROBOT_CPU_URL", _http_url, DEFAULT_ROBOT_CPU_URL, _password_hidden),
    Setting("ROBOT_CPU_TIMEOUT", "ROBOT_CPU_TIMEOUT", _float(0.1, 60), "3"),
    Setting("ROBOT_CACHE_TTL", "ROBOT_CACHE_TTL", whole_number(0, 86400 * 30), "300"),
    Setting("METRICS_TOKEN", "METRICS_TOKEN", _metrics_token, None, _hidden),
    Setting("HSTS_ENABLED", "HSTS_ENABLED", _bool, "false"),
    Setting("HOST", "HOST", _text, "127.0.0.1"),
    Setting("PORT", "PORT", whole_number(1, 65535), "8000"),
    # WEB_CONCURRENCY's None: 2 with REDIS_URL, else 1.
    Setting("WEB_CONCURRENCY", "WEB_CONCURRENCY", whole_number(1, 64), None),
    Setting("ADMIN_USERNAME", "ADMIN_USERNAME", _username, "admin"),
    Setting("ADMIN_PASSWORD", "ADMIN_PASSWORD", _text, None, _hidden),
)
ENVIRONMENT_NAMES = frozenset(setting.env for setting in SETTINGS)


def _secret_problem(secret: str) -> str | None:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"JWT_SECRET_KEY: must be at least {MIN_SECRET_BYTES} bytes"
    if len(set(secret)) < 8:
        return "JWT_SECRET_KEY: is too weak (too few distinct characters)"
    return None


def instance_secret(instance_path: str | os.PathLike[str]) -> str:
    """Read, or create once with mode 0600, the development secret under instance/."""
    path = Path(instance_path) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def load_settings(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Turn the environment into Flask config keys, or raise ConfigError naming each bad variable."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env) or setting.default  # empty means the default
        if raw is None:
            values[setting.key] = None
            continue
        try:
            values[setting.key] = setting.parse(raw)
        except ValueError as exc:
            shown = setting.shown(raw)
            problems.append(f"{setting.env}: {exc}" + ("" if shown is None else f" (got {shown})"))

    production = values.get("APP_ENV") == "production"
    secret = values.get("JWT_SECRET_KEY")
    if secret is None and not production:
        secret = instance_secret(instance_path)
    if secret is None:
        problems.append("JWT_SECRET_KEY: is required in production (32 bytes or more)")
    else:
        problem = _secret_problem(secret)
        if problem:
            problems.append(problem)
    if values.get("WEB_CONCURRENCY") is None:
        values["WEB_CONCURRENCY"] = 2 if values.get("REDIS_URL") else 1
    if production and values["WEB_CONCURRENCY"] > 1 and not values.get("REDIS_URL"):
        problems.append(
            "WEB_CONCURRENCY: production refuses more than one worker without REDIS_URL "
            "(limits, caches and ended sessions would be per process)"
        )
    if problems:
        raise ConfigError(problems)

    values["JWT_SECRET_KEY"] = secret
    if values["SQLALCHEMY_DATABASE_URI"] is None:
        values["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(Path(instance_path) / "resistance.db")
    return values


# Fixed settings: not configurable, because changing them would weaken a guarantee.
STATIC_SETTINGS: dict[str, Any] = {
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "JSON_SORT_KEYS": False,
    "PROPAGATE_EXCEPTIONS": False,
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    "PASSWORD_HASH_PROFILE": "default",
    "API_TITLE": "Resistance API",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
}
