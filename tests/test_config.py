"""api.config.load_settings: defaults, one clear line per bad variable, production's refusals
(README: Configuration)."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from api.config import DEFAULT_ROBOT_CPU_URL, SECRET_FILE, ConfigError, instance_secret, load_settings
from tests.conftest import SECRET

STRONG = "Zq7-wX2!mP4#kL9@vB6$nR3%tY8^uI5&"  # 32 bytes, many distinct characters


def load(tmp_path: Path, **environ: str) -> dict:
    return load_settings({"JWT_SECRET_KEY": SECRET, **environ}, str(tmp_path))


def problems(tmp_path: Path, **environ: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_settings({"JWT_SECRET_KEY": SECRET, **environ}, str(tmp_path))
    assert str(raised.value) == "\n".join(raised.value.problems)
    return raised.value.problems


# --- defaults -------------------------------------------------------------------------------


def test_load_settings_defaults(tmp_path):
    settings = load(tmp_path)
    assert settings == {
        "APP_ENV": "development",
        "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "resistance.db"),
        "REDIS_URL": None,
        "JWT_SECRET_KEY": SECRET,
        "JWT_ACCESS_TOKEN_EXPIRES": 900,
        "JWT_REFRESH_TOKEN_EXPIRES": 7 * 86400,
        "SESSION_MAX_AGE": timedelta(days=30),
        "REFRESH_REUSE_GRACE": 5,
        "ALLOW_REGISTRATION": True,
        "INFECTION_THRESHOLD": 3,
        "RATELIMIT_DEFAULT": "600/minute",
        "RATELIMIT_AUTH": "10/minute",
        "TRUSTED_PROXIES": 0,
        "CORS_ORIGINS": [],
        "ROBOT_CPU_URL": DEFAULT_ROBOT_CPU_URL,
        "ROBOT_CPU_TIMEOUT": 3.0,
        "ROBOT_CACHE_TTL": 300,
        "METRICS_TOKEN": None,
        "HSTS_ENABLED": False,
        "HOST": "127.0.0.1",
        "PORT": 8000,
        "WEB_CONCURRENCY": 1,
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": None,
    }
    assert DEFAULT_ROBOT_CPU_URL == "https://robotstakeover20210903110417.azurewebsites.net/robotcpu"


def test_load_settings_empty_values_mean_the_default(tmp_path):
    settings = load(tmp_path, PORT="", ALLOW_REGISTRATION="", APP_ENV="", DATABASE_URL="", METRICS_TOKEN="")
    assert (settings["PORT"], settings["ALLOW_REGISTRATION"], settings["APP_ENV"]) == (
        8000,
        True,
        "development",
    )
    assert settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert settings["METRICS_TOKEN"] is None


def test_load_settings_reads_every_variable(tmp_path):
    settings = load(
        tmp_path,
        APP_ENV="production",
        DATABASE_URL="postgresql+psycopg://db.internal:5432/resistance",
        REDIS_URL="rediss://cache.internal:6380/0",
        JWT_SECRET_KEY=STRONG,
        JWT_ACCESS_TTL=" 300 ",
        JWT_REFRESH_TTL="3600",
        SESSION_MAX_AGE="86400",
        REFRESH_REUSE_GRACE="0",
        ALLOW_REGISTRATION="off",
        INFECTION_THRESHOLD="5",
        RATELIMIT_DEFAULT="100 per minute; 5/second",
        RATELIMIT_AUTH="3/hour",
        TRUSTED_PROXIES="2",
        CORS_ORIGINS="https://app.example, http://localhost:3000",
        ROBOT_CPU_URL="http://127.0.0.1:9000/robots",
        ROBOT_CPU_TIMEOUT="0.5",
        ROBOT_CACHE_TTL="0",
        METRICS_TOKEN="scrape-me-" + "x" * 22,
        HSTS_ENABLED="Yes",
        HOST="0.0.0.0",
        PORT="8080",
        WEB_CONCURRENCY="4",
        ADMIN_USERNAME="root.admin",
        ADMIN_PASSWORD="whatever-is-checked-later",
    )
    assert settings == {
        "APP_ENV": "production",
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://db.internal:5432/resistance",
        "REDIS_URL": "rediss://cache.internal:6380/0",
        "JWT_SECRET_KEY": STRONG,
        "JWT_ACCESS_TOKEN_EXPIRES": 300,
        "JWT_REFRESH_TOKEN_EXPIRES": 3600,
        "SESSION_MAX_AGE": timedelta(days=1),
        "REFRESH_REUSE_GRACE": 0,
        "ALLOW_REGISTRATION": False,
        "INFECTION_THRESHOLD": 5,
        "RATELIMIT_DEFAULT": "100 per minute; 5/second",
        "RATELIMIT_AUTH": "3/hour",
        "TRUSTED_PROXIES": 2,
        "CORS_ORIGINS": ["https://app.example", "http://localhost:3000"],
        "ROBOT_CPU_URL": "http://127.0.0.1:9000/robots",
        "ROBOT_CPU_TIMEOUT": 0.5,
        "ROBOT_CACHE_TTL": 0,
        "METRICS_TOKEN": "scrape-me-" + "x" * 22,
        "HSTS_ENABLED": True,
        "HOST": "0.0.0.0",
        "PORT": 8080,
        "WEB_CONCURRENCY": 4,
        "ADMIN_USERNAME": "root.admin",
        "ADMIN_PASSWORD": "whatever-is-checked-later",
    }


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("TRUE", True), ("on", True), ("0", False), ("No", False)]
)
def test_load_settings_booleans_accept_common_spellings(tmp_path, raw, value):
    assert load(tmp_path, HSTS_ENABLED=raw)["HSTS_ENABLED"] is value


def test_load_settings_ignores_variables_it_does_not_know(tmp_path):
    settings = load(tmp_path, PASSWORD_HASH_PROFILE="fast-tests", JWT_ALGORITHM="none", DEBUG="1")
    assert "PASSWORD_HASH_PROFILE" not in settings
    assert "JWT_ALGORITHM" not in settings
    assert "DEBUG" not in settings


def test_load_settings_sqlite_memory_url_is_accepted(tmp_path):
    assert load(tmp_path, DATABASE_URL="sqlite://")["SQLALCHEMY_DATABASE_URI"] == "sqlite://"


# --- one line per bad variable --------------------------------------------------------------

BAD_VALUES = [
    # Refused by the Redis client only at the first request, were it not parsed at the start.
    ("REDIS_URL", "redis://127.0.0.1:99999/0"),
    ("REDIS_URL", "redis://[::1/0"),
    ("REDIS_URL", "redis://127.0.0.1:6391/0?socket_timeout=abc"),
    ("REDIS_URL", "redis+sentinel://127.0.0.1:99999/resistance"),
    ("APP_ENV", "prod"),
    ("APP_ENV", "Production"),
    ("DATABASE_URL", "mysql://db/resistance"),
    ("DATABASE_URL", "not a url"),
    ("REDIS_URL", "http://cache:6379"),
    ("JWT_ACCESS_TTL", "15m"),
    ("JWT_ACCESS_TTL", "29"),
    ("JWT_ACCESS_TTL", "86401"),
    ("JWT_REFRESH_TTL", "59"),
    ("JWT_REFRESH_TTL", str(90 * 86400 + 1)),
    ("SESSION_MAX_AGE", "59"),
    ("SESSION_MAX_AGE", str(365 * 86400 + 1)),
    ("REFRESH_REUSE_GRACE", "-1"),
    ("REFRESH_REUSE_GRACE", "11"),
    ("REFRESH_REUSE_GRACE", "5s"),
    ("ALLOW_REGISTRATION", "maybe"),
    ("INFECTION_THRESHOLD", "0"),
    ("INFECTION_THRESHOLD", "2.5"),
    ("RATELIMIT_DEFAULT", "lots"),
    ("RATELIMIT_DEFAULT", ";"),
    ("RATELIMIT_AUTH", "10/fortnight"),
    ("RATELIMIT_AUTH", "10/minute; x"),
    # limits reads these as "never" or as something else than written: refused.
    ("RATELIMIT_DEFAULT", "0/minute"),
    ("RATELIMIT_DEFAULT", "5/0minute"),
    ("RATELIMIT_DEFAULT", "10 per 99999999999999 year"),
    ("RATELIMIT_DEFAULT", "10 per 2 years"),
    ("RATELIMIT_AUTH", "10/minute; 0/second"),
    ("RATELIMIT_AUTH", "٣/minute"),
    ("METRICS_TOKEN", "ab"),
    ("METRICS_TOKEN", "x" * 31),
    ("TRUSTED_PROXIES", "-1"),
    ("TRUSTED_PROXIES", "11"),
    ("CORS_ORIGINS", "https://app.example/path"),
    ("CORS_ORIGINS", "*"),
    ("ROBOT_CPU_URL", "ftp://robots.example/list"),
    ("ROBOT_CPU_URL", "file:///etc/passwd"),
    ("ROBOT_CPU_TIMEOUT", "soon"),
    ("ROBOT_CPU_TIMEOUT", "0"),
    ("ROBOT_CPU_TIMEOUT", "61"),
    ("ROBOT_CPU_TIMEOUT", "nan"),
    ("ROBOT_CACHE_TTL", "-5"),
    ("HSTS_ENABLED", "sometimes"),
    ("PORT", "0"),
    ("PORT", "65536"),
    ("PORT", "http"),
    ("WEB_CONCURRENCY", "0"),
    ("WEB_CONCURRENCY", "65"),
    ("ADMIN_USERNAME", "ad"),
    ("ADMIN_USERNAME", "admin user"),
    ("ADMIN_USERNAME", "admin\n"),
    ("JWT_SECRET_KEY", "short-secret"),
    ("JWT_SECRET_KEY", "ab" * 20),
]


@pytest.mark.parametrize(("name", "raw"), BAD_VALUES)
def test_load_settings_bad_value_is_one_line_naming_the_variable(tmp_path, name, raw):
    (line,) = problems(tmp_path, **{name: raw})
    assert line.startswith(f"{name}: ")
    assert "\n" not in line


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("PORT", "http"),
        ("ROBOT_CPU_TIMEOUT", "soon"),
        ("JWT_ACCESS_TTL", "15m"),
        # Digits that are not ASCII, and Python's own spellings: int() and float() take them.
        ("PORT", "٨١٠٣"),
        ("WEB_CONCURRENCY", "²"),
        ("ROBOT_CACHE_TTL", "1_000"),
        ("ROBOT_CPU_TIMEOUT", "１.5"),
        ("ROBOT_CPU_TIMEOUT", "infinity"),
    ],
)
def test_load_settings_non_number_says_must_be_a_number(tmp_path, name, raw):
    assert problems(tmp_path, **{name: raw}) == [f"{name}: must be a number (got {raw!r})"]


def test_load_settings_out_of_range_number_names_the_range(tmp_path):
    assert problems(tmp_path, PORT="0") == ["PORT: must be a whole number 1..65535 (got '0')"]
    assert problems(tmp_path, ROBOT_CPU_TIMEOUT="61") == [
        "ROBOT_CPU_TIMEOUT: must be a number between 0.1 and 60 (got '61')"
    ]


def test_load_settings_reports_every_bad_variable_at_once(tmp_path):
    found = problems(tmp_path, PORT="x", HSTS_ENABLED="x", REDIS_URL="x", APP_ENV="x")
    assert [line.split(":")[0] for line in found] == ["APP_ENV", "REDIS_URL", "HSTS_ENABLED", "PORT"]


# --- the JWT secret -------------------------------------------------------------------------


def test_production_without_secret_is_refused(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_settings({"APP_ENV": "production"}, str(tmp_path))
    assert raised.value.problems == ["JWT_SECRET_KEY: is required in production (32 bytes or more)"]
    assert not (tmp_path / SECRET_FILE).exists()  # never a generated fallback in production


def test_production_with_empty_secret_is_refused(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_settings({"APP_ENV": "production", "JWT_SECRET_KEY": ""}, str(tmp_path))
    assert raised.value.problems[0].startswith("JWT_SECRET_KEY: is required")


def test_production_ignores_an_instance_secret_file(tmp_path):
    (tmp_path / SECRET_FILE).write_text(STRONG)
    with pytest.raises(ConfigError):
        load_settings({"APP_ENV": "production"}, str(tmp_path))


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("x" * 31, "must be at least 32 bytes"),
        (STRONG[:31], "must be at least 32 bytes"),
        ("a" * 64, "is too weak"),
        ("abcdefg" * 10, "is too weak"),  # 7 distinct characters
    ],
)
@pytest.mark.parametrize("env", ["production", "development"])
def test_short_or_low_entropy_secret_is_refused(tmp_path, secret, reason, env):
    (line,) = problems(tmp_path, APP_ENV=env, JWT_SECRET_KEY=secret)
    assert line.startswith(f"JWT_SECRET_KEY: {reason}")
    assert secret not in line  # the secret itself never goes to a log


def test_secret_length_counts_bytes_not_characters(tmp_path):
    secret = "ü" * 8 + "abcdefgh" * 2  # 24 characters, 32 bytes, 9 distinct
    assert load(tmp_path, APP_ENV="production", JWT_SECRET_KEY=secret)["JWT_SECRET_KEY"] == secret


def test_production_with_strong_secret_starts(tmp_path):
    settings = load(tmp_path, APP_ENV="production", JWT_SECRET_KEY=STRONG)
    assert settings["JWT_SECRET_KEY"] == STRONG
    assert not (tmp_path / SECRET_FILE).exists()


def test_development_without_secret_creates_a_private_instance_secret(tmp_path):
    instance = tmp_path / "instance"
    settings = load_settings({}, str(instance))
    path = instance / SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    secret = settings["JWT_SECRET_KEY"]
    assert secret == path.read_text().strip()
    assert len(secret.encode()) >= 32


def test_development_reuses_the_instance_secret(tmp_path):
    first = load_settings({}, str(tmp_path))["JWT_SECRET_KEY"]
    second = load_settings({}, str(tmp_path))["JWT_SECRET_KEY"]
    assert first == second
    assert load_settings({"APP_ENV": "development"}, str(tmp_path))["JWT_SECRET_KEY"] == first


def test_development_reads_an_existing_instance_secret(tmp_path):
    (tmp_path / SECRET_FILE).write_text(STRONG + "\n")
    assert load_settings({}, str(tmp_path))["JWT_SECRET_KEY"] == STRONG


def test_development_refuses_a_weak_instance_secret(tmp_path):
    (tmp_path / SECRET_FILE).write_text("short\n")
    with pytest.raises(ConfigError) as raised:
        load_settings({}, str(tmp_path))
    assert raised.value.problems == ["JWT_SECRET_KEY: must be at least 32 bytes"]


def test_development_with_a_given_secret_writes_no_file(tmp_path):
    assert load(tmp_path)["JWT_SECRET_KEY"] == SECRET
    assert not (tmp_path / SECRET_FILE).exists()


def test_instance_secret_differs_between_instances(tmp_path):
    assert instance_secret(tmp_path / "a") != instance_secret(tmp_path / "b")


# --- workers and Redis ----------------------------------------------------------------------


def test_web_concurrency_defaults_to_one_without_redis_and_two_with(tmp_path):
    assert load(tmp_path)["WEB_CONCURRENCY"] == 1
    assert load(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")["WEB_CONCURRENCY"] == 2


def test_production_refuses_several_workers_without_redis(tmp_path):
    (line,) = problems(tmp_path, APP_ENV="production", JWT_SECRET_KEY=STRONG, WEB_CONCURRENCY="2")
    assert line.startswith("WEB_CONCURRENCY: production refuses more than one worker without REDIS_URL")


@pytest.mark.parametrize(
    "environ",
    [
        {"WEB_CONCURRENCY": "1"},
        {},
        {"WEB_CONCURRENCY": "8", "REDIS_URL": "redis://127.0.0.1:6379/0"},
        {"REDIS_URL": "redis://127.0.0.1:6379/0"},
    ],
)
def test_production_accepts_one_worker_or_redis(tmp_path, environ):
    settings = load(tmp_path, APP_ENV="production", JWT_SECRET_KEY=STRONG, **environ)
    assert settings["WEB_CONCURRENCY"] >= 1


def test_development_allows_several_workers_without_redis(tmp_path):
    assert load(tmp_path, WEB_CONCURRENCY="3")["WEB_CONCURRENCY"] == 3


@pytest.mark.parametrize(
    "rate", ["1/second", "999999999 per 999999 seconds", "10 per 1 year", "5/2minutes; 1/day"]
)
def test_load_settings_accepts_rates_within_bounds(tmp_path, rate):
    assert load(tmp_path, RATELIMIT_DEFAULT=rate)["RATELIMIT_DEFAULT"] == rate


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("REDIS_URL", "redis+sentinel://app:S3cretPW@127.0.0.1:99999/resistance"),
        ("REDIS_URL", "redis://:S3cretPW@127.0.0.1:99999/0"),
        ("REDIS_URL", "redis://:S3cret@PW@127.0.0.1:99999/0"),
        ("DATABASE_URL", "mysql://app:S3cretPW@db.example/resistance"),
        ("DATABASE_URL", "mysql:///resistance?host=db.example&password=S3cretPW&sslmode=require"),
        ("METRICS_TOKEN", "S3cretPW"),
    ],
)
def test_a_refused_value_is_shown_without_its_secret(tmp_path, name, raw):
    """What a start prints ends up in deploy logs: the line names the variable, never a password
    or token in it."""
    (line,) = problems(tmp_path, **{name: raw})
    assert line.startswith(f"{name}: ")
    assert "S3cret" not in line and "PW@" not in line
