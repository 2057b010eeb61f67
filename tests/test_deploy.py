"""The deployment under deploy/: what the files promise, and nginx in front of real replicas.

Static checks, no service needed: compose.yaml (three replicas behind nginx, only nginx
publishes a port, the one-shot migrate first, healthy PostgreSQL and Redis, production settings
the app accepts, no secret value anywhere), the Dockerfile (non-root, no secret, HEALTHCHECK,
gunicorn), its build-context allowlist and its entrypoint, and nginx.conf's problem bodies
against the app's own (api/problems.py).

Live checks, on loopback: the replicas start as compose starts them (one `flask db upgrade`,
then all replicas at once) on a database of their own, and nginx runs deploy/nginx.conf
(tests/nginx.py renders it for loopback addresses) in front of them. nginx comes from
`.ci/system-packages`; without it those tests are skipped with a message naming that script,
unless REQUIRE_SERVICES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.config import ENVIRONMENT_NAMES, load_settings
from api.problems import PROBLEM_BASE, problem_body
from security.headers import API_CSP, BASE_HEADERS
from tests.conftest import SECRET
from tests.nginx import DroppingUpstream, NginxServer, check_config, nginx_binary, render_config
from tests.server import (
    ADMIN_PASSWORD,
    REQUEST_TIMEOUT,
    ROOT,
    GunicornServer,
    free_port,
    log_problems,
    run_to_exit,
    seed_through,
    server_environ,
)

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"
NGINX_CONF = DEPLOY / "nginx.conf"

REPLICAS = ("app1", "app2", "app3")
APP_PORT = "8000"
NGINX_PORT = "8080"
# What the API containers may be given: the app's settings (api/config.py) and gunicorn.conf.py's.
KNOWN_SETTINGS = set(ENVIRONMENT_NAMES) | {"GUNICORN_THREADS", "FORWARDED_ALLOW_IPS"}
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN")
BODY_LIMIT = 64 * 1024


# ---- compose.yaml ------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def entrypoint_names() -> list[str]:
    """The names docker-entrypoint.sh loads from NAME_FILE."""
    match = re.search(r"^for name in ([A-Z_ ]+); do$", ENTRYPOINT.read_text(), re.MULTILINE)
    assert match, "docker-entrypoint.sh lost its `for name in ...` list"
    return match.group(1).split()


def _interpolate(value: str) -> str:
    """Compose's ${NAME:-default} with nothing set in the environment."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def container_environment(name: str) -> dict[str, str]:
    """The environment compose gives a service when no override is set (NAME_FILE kept)."""
    environment = services()[name].get("environment") or {}
    assert isinstance(environment, dict), f"{name}: environment must be a mapping"
    return {key: _interpolate(str(value)) for key, value in environment.items()}


def as_started(environment: dict[str, str]) -> dict[str, str]:
    """What the entrypoint turns that into: NAME_FILE becomes NAME (with a stand-in value)."""
    started = {}
    for key, value in environment.items():
        if key.endswith("_FILE"):
            started[key.removesuffix("_FILE")] = SECRET
        else:
            started[key] = value
    return started


def test_compose_runs_three_replicas_of_one_image_behind_nginx():
    found = services()
    for name in REPLICAS:
        assert name in found, f"compose.yaml has no {name}"
        replica = found[name]
        assert replica["image"] == found["migrate"]["image"]
        assert replica["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert "command" not in replica  # the image's CMD: gunicorn -c gunicorn.conf.py
        assert container_environment(name)["PORT"] == APP_PORT
    # nginx.conf's upstream names exactly these replicas, on the port they listen on.
    upstream = re.search(r"upstream api \{(.*?)\n    \}", NGINX_CONF.read_text(), re.DOTALL)
    assert upstream
    servers = re.findall(r"^\s*server\s+(\S+)", upstream.group(1), re.MULTILINE)
    assert servers == [f"{name}:{APP_PORT}" for name in REPLICAS]
    nginx = found["nginx"]
    assert {name: {"condition": "service_healthy"} for name in REPLICAS} == nginx["depends_on"]


def test_only_nginx_publishes_a_port():
    published = {name for name, service in services().items() if service.get("ports")}
    assert published == {"nginx"}
    assert services()["nginx"]["ports"] == [f"${{HTTP_PORT:-8080}}:{NGINX_PORT}"]
    assert re.search(rf"^\s*listen {NGINX_PORT} default_server;$", NGINX_CONF.read_text(), re.MULTILINE)
    for name, service in services().items():
        assert service.get("network_mode") is None, f"{name} must stay on the compose networks"
    # The data stores sit on a network with no route out and no way in.
    networks = compose()["networks"]
    assert networks["backend"] == {"internal": True}
    for name in ("postgres", "redis", "migrate"):
        assert services()[name]["networks"] == ["backend"]
    assert services()["nginx"]["networks"] == ["edge"]


def test_replicas_start_after_migrate_and_healthy_data_stores():
    found = services()
    migrate = found["migrate"]
    assert migrate["command"] == ["flask", "--app", "wsgi", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in REPLICAS:
        assert found[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
    postgres, redis = found["postgres"], found["redis"]
    assert postgres["image"].startswith("postgres:15")
    assert redis["image"].startswith("redis:7")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert postgres["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert redis["volumes"] == ["redis-data:/data"]
    assert set(compose()["volumes"]) == {"postgres-data", "redis-data"}


def test_services_restart_and_run_on_read_only_filesystems():
    for name, service in services().items():
        assert service.get("read_only") is True, f"{name}: read_only"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        expected = "no" if name == "migrate" else "unless-stopped"
        assert service.get("restart") == expected, name
    for name in (*REPLICAS, "migrate", "nginx"):
        assert services()[name]["cap_drop"] == ["ALL"], name


def test_replica_environment_is_production_behind_one_proxy_and_only_known_settings():
    names = set(entrypoint_names())
    for name in (*REPLICAS, "migrate"):
        environment = container_environment(name)
        for key in environment:
            base = key.removesuffix("_FILE")
            if key.endswith("_FILE"):
                assert base in names, f"{name}: docker-entrypoint.sh does not load {key}"
                assert base in KNOWN_SETTINGS | {"PGPASSWORD"}, f"{name}: {key} names no setting"
            else:
                assert key in KNOWN_SETTINGS, f"{name}: {key} is not a setting of the app or gunicorn"
        assert environment["APP_ENV"] == "production"
        for url_key in ("DATABASE_URL", "REDIS_URL"):
            assert "@" not in environment[url_key] or make_url(environment[url_key]).password is None
    for name in REPLICAS:
        environment = container_environment(name)
        assert environment["TRUSTED_PROXIES"] == "1"
        assert environment["HOST"] == "0.0.0.0"  # noqa: S104 - inside the container, on purpose


def test_replica_environment_is_a_configuration_the_app_accepts(tmp_path: Path):
    for name in (*REPLICAS, "migrate"):
        settings = load_settings(as_started(container_environment(name)), str(tmp_path))
        assert settings["APP_ENV"] == "production"
        assert settings["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
        assert settings["REDIS_URL"] == "redis://redis:6379/0"
        assert settings["WEB_CONCURRENCY"] >= 2  # with Redis, so limits hold across workers
    assert not list(tmp_path.iterdir())  # no development secret was generated
    replica = as_started(container_environment("app1"))
    assert {"JWT_SECRET_KEY", "METRICS_TOKEN", "ADMIN_PASSWORD", "PGPASSWORD"} <= set(replica)
    assert 1 <= int(replica["GUNICORN_THREADS"]) <= 64


def test_no_secret_value_is_written_in_compose():
    declared = compose()["secrets"]
    for secret in declared.values():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/")
    assert "secrets/" in (DEPLOY / ".gitignore").read_text().splitlines()
    for name, service in services().items():
        mounted = set(service.get("secrets", []))
        assert mounted <= set(declared), name
        for key, value in (service.get("environment") or {}).items():
            if not any(word in key for word in SECRET_WORDS):
                continue
            # Only a path to a secret this service mounts, never a value.
            assert key.endswith("_FILE"), f"{name}: {key} carries a value; use {key}_FILE"
            assert value == f"/run/secrets/{Path(value).name}" and Path(value).name in mounted, (name, key)
    # Every ${VAR} has a default or stops compose with a message: none silently becomes "".
    for reference in re.findall(r"\$\{[^}]*\}", COMPOSE.read_text()):
        assert re.fullmatch(r"\$\{[A-Z0-9_]+:[-?][^}]*\}", reference), reference
        assert not any(word in reference for word in SECRET_WORDS), reference


# ---- Dockerfile, build context, entrypoint -----------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(index for index, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_dockerfile_builds_a_slim_python_311_runtime_as_non_root():
    steps = dockerfile()
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in steps
    assert [args for keyword, args in steps if keyword == "FROM"] == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE} AS runtime",
    ]
    runtime = final_stage()
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users == ["10001:10001"]
    keywords = [keyword for keyword, _ in runtime]
    assert keywords.index("USER") < keywords.index("CMD")
    environment = " ".join(args for keyword, args in runtime if keyword == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "HOST=0.0.0.0", "APP_ENV=production"):
        assert setting in environment.split(), setting
    assert json.loads(dict(runtime)["CMD"]) == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert json.loads(dict(runtime)["ENTRYPOINT"]) == ["docker-entrypoint.sh"]


def test_dockerfile_bakes_in_no_secret_and_copies_only_the_runtime():
    steps = dockerfile()
    assert "ADD" not in [keyword for keyword, _ in steps]
    for keyword, args in steps:
        if keyword in ("ENV", "ARG", "LABEL"):
            assert not any(word in args.upper() for word in SECRET_WORDS), (keyword, args)
    sources = []
    for keyword, args in final_stage():
        if keyword == "COPY" and "--from=" not in args:
            words = [word for word in args.split() if not word.startswith("--")]
            sources += words[:-1]
    assert sorted(sources) == sorted(
        ["wsgi.py", "gunicorn.conf.py", "api/", "security/", "migrations/", "deploy/docker-entrypoint.sh"]
    )
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source.rstrip("/") + ("/x.py" if source.endswith("/") else "")), source
    # Installed from requirements.txt only: no test or lint tool reaches the image.
    assert "pip install --only-binary=:all: -r /tmp/requirements.txt" in " ".join(
        args for keyword, args in steps if keyword == "RUN"
    )


def test_dockerfile_healthcheck_asks_healthz_with_python():
    (healthcheck,) = [args for keyword, args in final_stage() if keyword == "HEALTHCHECK"]
    options, _, command = healthcheck.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options and "--start-period=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"] and "/healthz" in argv[2]


def dockerignored(path: str) -> bool:
    """Would deploy/Dockerfile.dockerignore keep `path` out of the build context?

    Docker's rules: patterns in order, the last one matching the path or a parent wins;
    `!` lets a path back in; `*` stays within one path segment, `**` spans any number.
    """
    parts = path.split("/")
    candidates = ["/".join(parts[:length]) for length in range(1, len(parts) + 1)]
    excluded = False
    for line in DOCKERIGNORE.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        "instance/jwt-secret",
        "instance/resistance.db",
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "deploy/secrets/jwt_secret_key",
        "deploy/compose.yaml",
        "node_modules/x/index.js",
        "api/__pycache__/config.cpython-311.pyc",
        ".env",
    ],
)
def test_build_context_leaves_out(path: str):
    assert dockerignored(path)


@pytest.mark.parametrize(
    "path",
    [
        "requirements.txt",
        "api/config.py",
        "api/robots/robotcpu-snapshot.json",
        "security/common-passwords.txt",
        "migrations/env.py",
    ],
)
def test_build_context_keeps(path: str):
    assert not dockerignored(path)
    assert (ROOT / path).exists()


def _entrypoint(environ: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own script
        ["sh", str(ENTRYPOINT), *command],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **environ},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def test_entrypoint_turns_secret_files_into_settings(tmp_path: Path):
    jwt, password = tmp_path / "jwt_secret_key", tmp_path / "postgres_password"
    jwt.write_text("a-secret-with spaces and $dollar\n")
    password.write_text("pg-password\n")
    result = _entrypoint({"JWT_SECRET_KEY_FILE": str(jwt), "PGPASSWORD_FILE": str(password)}, "env")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "JWT_SECRET_KEY=a-secret-with spaces and $dollar" in lines  # trailing newline dropped
    assert "PGPASSWORD=pg-password" in lines
    assert not [line for line in lines if line.split("=", 1)[0].endswith("_FILE")]


def test_entrypoint_refuses_a_value_and_a_file_or_an_unreadable_file(tmp_path: Path):
    secret = tmp_path / "jwt_secret_key"
    secret.write_text("x" * 40)
    both = _entrypoint({"JWT_SECRET_KEY": "y" * 40, "JWT_SECRET_KEY_FILE": str(secret)}, "true")
    assert both.returncode == 1
    assert both.stderr.startswith("configuration error: JWT_SECRET_KEY: set either")
    missing = _entrypoint({"METRICS_TOKEN_FILE": str(tmp_path / "absent")}, "true")
    assert missing.returncode == 1
    assert missing.stderr.startswith("configuration error: METRICS_TOKEN_FILE: cannot read")


# ---- nginx.conf, static ------------------------------------------------------------------


def nginx_directives() -> str:
    """nginx.conf without comments."""
    return "\n".join(line.split("#", 1)[0] for line in NGINX_CONF.read_text().splitlines())


def nginx_map(variable: str) -> dict[str, str]:
    block = re.search(rf"map \$status \${variable} \{{(.*?)\}}", NGINX_CONF.read_text(), re.DOTALL)
    assert block, variable
    return {
        key: value.strip('"')
        for key, value in re.findall(r'^\s*(\S+)\s+("[^"]*"|\S+);$', block.group(1), re.MULTILINE)
    }


def test_nginx_retries_only_idempotent_requests_within_bounds():
    directives = nginx_directives()
    assert "non_idempotent" not in directives
    # Not http_503: a shared-dependency outage must not eject every replica.
    assert re.search(r"proxy_next_upstream error timeout http_502 http_504;", directives)
    assert re.search(r"proxy_next_upstream_tries 3;", directives)
    assert re.search(r"proxy_next_upstream_timeout \d+s;", directives)
    for setting in ("server_tokens off;", f"client_max_body_size {BODY_LIMIT // 1024}k;", 'Connection "";'):
        assert setting in directives, setting
    assert "proxy_http_version 1.1;" in directives
    assert "X-Forwarded-For $proxy_add_x_forwarded_for;" in directives
    assert re.search(r"^\s*user\s", directives, re.MULTILINE) is None  # a non-root master


def test_nginx_problem_bodies_are_the_apps():
    types, titles = nginx_map("problem_type"), nginx_map("problem_title")
    assert set(types) == set(titles)
    for status in (int(key) for key in types if key != "default"):
        if status in (400, 404, 413, 414, 429, 431, 502, 503):  # the statuses the app names too
            app = problem_body(status)
            assert PROBLEM_BASE + types[str(status)] == app["type"], status
            assert titles[str(status)] == app["title"], status
    assert nginx_map("problem_detail")["413"] == f"The body must be at most {BODY_LIMIT} bytes."


def test_nginx_config_renders_for_loopback_and_passes_nginx_t(tmp_path: Path):
    upstreams = [f"127.0.0.1:{port}" for port in (8001, 8002, 8003)]
    config = render_config(upstreams, "127.0.0.1:18080")
    assert "resolve;" not in config
    for address in upstreams:
        assert f"server {address} max_fails=3 fail_timeout=10s;" in config
    result = check_config(config, tmp_path / "prefix")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test is successful" in result.stderr


def test_render_config_refuses_a_config_of_another_shape(tmp_path: Path):
    other = tmp_path / "nginx.conf"
    other.write_text("events {}\nhttp { server { listen 80; } }\n")
    with pytest.raises(ValueError, match="expected one `listen` line"):
        render_config(["127.0.0.1:1"], "127.0.0.1:2", source=other)


# ---- live: replicas started as compose starts them, nginx in front -----------------------


@pytest.fixture(scope="module")
def stack_db_url(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database for this module's replicas: a new SQLite file, or a schema of its own
    in the PostgreSQL test database (so nothing here touches the suite's tables)."""
    if not db_url.startswith("postgresql"):
        yield "sqlite:///" + str(tmp_path_factory.mktemp("stack") / "stack.db")
        return
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS deploy_stack CASCADE"))
        connection.execute(text("CREATE SCHEMA deploy_stack"))
    url = make_url(db_url).update_query_dict({"options": "-csearch_path=deploy_stack"})
    yield url.render_as_string(hide_password=False)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS deploy_stack CASCADE"))
    engine.dispose()


def start_replicas(db_url: str, directory: Path, count: int) -> list[GunicornServer]:
    """Like compose: `flask --app wsgi db upgrade` once, then every replica at the same time."""
    upgrade = [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"]
    migrate = run_to_exit(upgrade, server_environ(db_url))
    assert migrate.returncode == 0, migrate.stdout
    environ = server_environ(db_url, TRUSTED_PROXIES="1")
    servers = [GunicornServer(environ, directory / f"app{index}.log") for index in range(1, count + 1)]
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(server.start) for server in servers]
    failures = [future.exception() for future in futures if future.exception()]
    if failures:
        for server in servers:
            server.stop()
        raise failures[0]  # type: ignore[misc]
    return servers


def admin_count(db_url: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM accounts WHERE role = 'admin'")
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def replicas(stack_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[GunicornServer]]:
    servers = start_replicas(stack_db_url, tmp_path_factory.mktemp("replicas"), 2)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def live(replicas: list[GunicornServer]) -> Iterator[list[GunicornServer]]:
    """The replicas, and after the test: nothing in their output shows a failure."""
    for server in replicas:
        server.mark()
    yield replicas
    problems = [line for server in replicas for line in log_problems(server.output_since_mark())]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def edge(replicas: list[GunicornServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    """deploy/nginx.conf in front of the two replicas."""
    nginx_binary()
    upstreams = [f"127.0.0.1:{server.port}" for server in replicas]
    with NginxServer(upstreams, tmp_path_factory.mktemp("edge")) as nginx:
        yield nginx


def request_id() -> str:
    return f"deploy-{uuid.uuid4().hex}"


def answered_by(replicas: list[GunicornServer], rid: str) -> list[int]:
    """Indexes of the replicas whose log has a line of this request."""
    needle = f'"request_id": "{rid}"'
    return [index for index, server in enumerate(replicas) if needle in server.output()]


def assert_edge_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """A problem+json answer made by nginx itself: the app's envelope and headers."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM_BASE)
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    for name, value in BASE_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.headers["Content-Security-Policy"] == API_CSP
    assert "nginx/" not in response.headers.get("Server", "")  # server_tokens off
    return body


def test_replicas_started_together_after_one_migration_made_one_admin(
    replicas: list[GunicornServer], stack_db_url: str
):
    # Both replicas ran the start-up hook at once: migrations (already done) and the first admin.
    assert admin_count(stack_db_url) == 1
    for server in replicas:
        assert not log_problems(server.output())
        with server.client() as client:
            login = client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text


def test_image_healthcheck_command_passes_on_a_live_replica_only(live: list[GunicornServer]):
    (healthcheck,) = [args for keyword, args in final_stage() if keyword == "HEALTHCHECK"]
    argv = json.loads(healthcheck.partition(" CMD ")[2])
    argv[0] = sys.executable
    for port, expected in ((live[0].port, 0), (free_port(), 1)):
        result = subprocess.run(  # noqa: S603 - the Dockerfile's own command
            argv,
            env={"PATH": os.environ.get("PATH", ""), "PORT": str(port)},
            capture_output=True,
            timeout=15,
            check=False,
        )
        assert result.returncode == expected, result.stderr


def test_requests_pass_through_to_both_replicas(live: list[GunicornServer], edge: NginxServer):
    ids = [request_id() for _ in range(12)]
    with edge.client() as client:
        for rid in ids:
            response = client.get("/readyz", headers={"X-Request-ID": rid})
            assert response.status_code == 200, response.text
            assert response.headers["X-Request-ID"] == rid  # nginx passed it, the app echoed it
            assert response.json()["checks"]["database"] == "ok"
    where = Counter()
    for rid in ids:
        (index,) = answered_by(live, rid)  # exactly one replica served each request
        where[index] += 1
    assert set(where) == {0, 1}, where  # both replicas took traffic
    entries = edge.logged(ids)
    upstreams = {f"127.0.0.1:{server.port}" for server in live}
    for rid in ids:
        assert entries[rid]["status"] == 200 and entries[rid]["upstream"] in upstreams
        assert entries[rid]["path"] == "/readyz" and entries[rid]["remote_addr"] == "127.0.0.1"


def test_request_id_is_made_by_nginx_when_missing_or_malformed(live: list[GunicornServer], edge: NginxServer):
    with edge.client() as client:
        for headers in ({}, {"X-Request-ID": "not a valid id!"}):
            response = client.get("/healthz", headers=headers)
            assert response.status_code == 200
            rid = response.headers["X-Request-ID"]
            assert re.fullmatch(r"[0-9a-f]{32}", rid), rid  # nginx's $request_id, echoed by the app
            assert len(answered_by(live, rid)) == 1
            assert edge.logged([rid])[rid]["status"] == 200


def test_the_app_sees_the_real_client_ip_and_no_spoofed_one(live: list[GunicornServer], edge: NginxServer):
    """Two clients from two loopback addresses; one also sends a forged X-Forwarded-For.

    The app keys its anonymous limit per client IP (TRUSTED_PROXIES=1: the hop nginx added).
    On every replica, each client's RateLimit-Remaining counts that client's requests alone:
    were the app seeing nginx's address (or the forged one), the counts would mix.
    """
    clients = {
        address: httpx.Client(
            base_url=edge.base_url,
            timeout=REQUEST_TIMEOUT,
            transport=httpx.HTTPTransport(local_address=address),
        )
        for address in ("127.0.0.2", "127.0.0.3")
    }
    seen: Counter[tuple[str, int]] = Counter()
    sent: dict[str, str] = {}
    try:
        for turn in range(12):
            address = ("127.0.0.2", "127.0.0.3")[turn % 2]
            rid = request_id()
            sent[rid] = address
            headers = {"X-Request-ID": rid}
            if address == "127.0.0.2" and turn % 4 == 0:
                headers["X-Forwarded-For"] = "198.51.100.7"  # forged: must not count
            response = clients[address].get("/api/v1/survivors", headers=headers)
            assert response.status_code == 401
            (replica,) = answered_by(live, rid)
            seen[address, replica] += 1
            limit = int(response.headers["RateLimit-Limit"])
            assert int(response.headers["RateLimit-Remaining"]) == limit - seen[address, replica], (
                address,
                replica,
                dict(seen),
            )
    finally:
        for client in clients.values():
            client.close()
    assert {replica for _, replica in seen} == {0, 1}
    entries = edge.logged(sent)
    for rid, address in sent.items():  # nginx logs the peer, not the forged header
        assert entries[rid]["remote_addr"] == address


def _padded_login(size: int) -> bytes:
    """A JSON login body of exactly `size` bytes (the app refuses the extra member: 422)."""
    head = b'{"username": "nobody", "password": "correct-battery-horse-42", "pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def test_a_body_over_64_kib_gets_413_problem_from_nginx(live: list[GunicornServer], edge: NginxServer):
    with edge.client() as client:
        at_limit = client.post(
            "/api/v1/auth/login",
            content=_padded_login(BODY_LIMIT),
            headers={"Content-Type": "application/json", "X-Request-ID": (rid := request_id())},
        )
        assert at_limit.status_code == 422, at_limit.text  # the app's own answer: it got the body
        assert len(answered_by(live, rid)) == 1
        for body in (_padded_login(BODY_LIMIT + 1), b"x" * (70 * 1024), iter([b"x" * (70 * 1024)])):
            rid = request_id()
            response = client.post(
                "/api/v1/survivors?page=1",  # the query is not part of `instance`
                content=body,
                headers={"Content-Type": "application/json", "X-Request-ID": rid},
            )
            problem = assert_edge_problem(response, 413)
            assert problem == {
                "type": PROBLEM_BASE + "payload-too-large",
                "title": "Payload too large",
                "status": 413,
                "detail": f"The body must be at most {BODY_LIMIT} bytes.",
                "instance": "/api/v1/survivors",
                "request_id": rid,
            }
            assert answered_by(live, rid) == []  # refused at the edge


def replace_once(config: str, old: str, new: str) -> str:
    assert config.count(old) == 1, f"nginx.conf no longer has {old!r}"
    return config.replace(old, new)


def test_a_flood_from_one_address_gets_429_problem_from_nginx(live: list[GunicornServer], tmp_path: Path):
    def tight(config: str) -> str:
        config = replace_once(config, "rate=100r/s;", "rate=1r/m;")
        return replace_once(config, "burst=200 nodelay;", "burst=1 nodelay;")

    upstreams = [f"127.0.0.1:{server.port}" for server in live]
    with NginxServer(upstreams, tmp_path / "edge", transform=tight) as nginx, nginx.client() as client:
        responses = [client.get("/healthz", headers={"X-Request-ID": request_id()}) for _ in range(5)]
    assert [response.status_code for response in responses[:2]] == [200, 200]  # the rate, then the burst
    for response in responses[2:]:
        problem = assert_edge_problem(response, 429)
        assert problem["type"] == PROBLEM_BASE + "rate-limited"
        assert response.headers["Retry-After"] == "1"
        assert answered_by(live, problem["request_id"]) == []


def test_a_post_is_not_retried_on_another_replica_when_the_first_dies_mid_request(
    live: list[GunicornServer], tmp_path: Path
):
    """One upstream reads the request and closes without answering (a replica dying mid-request).

    A GET it swallowed is passed on to the live replica and answered; a POST it swallowed is
    not passed on (it could have been applied: nginx without `non_idempotent`): the client gets
    nginx's 502 problem and the live replica never sees that request.
    """
    with DroppingUpstream() as dropper:
        upstreams = [dropper.address, f"127.0.0.1:{live[0].port}"]
        with NginxServer(upstreams, tmp_path / "edge") as nginx, nginx.client() as client:
            outcomes: dict[str, list[tuple[str, int]]] = {"GET": [], "POST": []}
            for method in ("GET", "POST"):
                for _ in range(6):  # round robin: the dropper gets one of the first two
                    rid = request_id()
                    headers = {"X-Request-ID": rid}
                    if method == "GET":
                        response = client.get("/readyz", headers=headers)
                    else:
                        login = {"username": "nobody", "password": "wrong-password-123"}
                        response = client.post("/api/v1/auth/login", json=login, headers=headers)
                    outcomes[method].append((rid, response.status_code))
                    if (method, rid) in dropper.requests():
                        break
                else:
                    pytest.fail(f"no {method} reached the dropping upstream: {outcomes}")
            dropped = {rid for _, rid in dropper.requests()}
            get_rid, get_status = outcomes["GET"][-1]
            assert get_rid in dropped and get_status == 200
            assert answered_by(live, get_rid) == [0]  # retried on the live replica
            post_rid, post_status = outcomes["POST"][-1]
            assert post_rid in dropped and post_status == 502
            assert answered_by(live, post_rid) == []  # never sent twice
            entries = nginx.logged([get_rid, post_rid])
            assert entries[get_rid]["upstream"] == f"{dropper.address}, 127.0.0.1:{live[0].port}"
            assert entries[post_rid]["upstream"] == dropper.address
            assert entries[post_rid]["status"] == 502
            # Every other POST went straight to the live replica and got the app's answer.
            for rid, status in outcomes["POST"][:-1]:
                assert status == 401 and answered_by(live, rid) == [0]


def test_failover_then_502_problem_when_no_replica_answers(stack_db_url: str, tmp_path: Path):
    """Two replicas of its own: one stops, every request still succeeds (connections refused
    are retried, POSTs too, since nothing was sent); both stop, nginx answers problem+json."""
    nginx_binary()
    servers = start_replicas(stack_db_url, tmp_path, 2)
    try:
        upstreams = [f"127.0.0.1:{server.port}" for server in servers]
        with NginxServer(upstreams, tmp_path / "edge") as nginx, nginx.client() as client:
            assert {client.get("/healthz").status_code for _ in range(4)} == {200}
            servers[0].stop()
            login = {"username": "nobody", "password": "wrong-password-123"}
            for _ in range(4):
                assert client.get("/readyz").status_code == 200
                assert client.post("/api/v1/auth/login", json=login).status_code == 401
            servers[1].stop()
            for method, path in (("GET", "/api/v1/survivors"), ("POST", "/api/v1/auth/login")):
                rid = request_id()
                body = login if method == "POST" else None
                response = client.request(method, path, json=body, headers={"X-Request-ID": rid})
                problem = assert_edge_problem(response, 502)
                assert problem["type"] == PROBLEM_BASE + "bad-gateway"
                assert problem["instance"] == path and problem["request_id"] == rid
                assert response.headers["Retry-After"] == "5"
            assert "no live upstreams" in nginx.error_output() or "Connection refused" in nginx.error_output()
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert not log_problems(server.output())


def test_forged_host_through_nginx_never_reaches_links_or_the_cache(
    live: list[GunicornServer], edge: NginxServer
):
    """The attacker's forged Host and X-Forwarded-* first, then another account: on both replicas,
    every Link is the same relative reference (nginx passes Host on, the app never uses it)."""
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}
    with edge.client() as client:
        admin_token, _ids = seed_through(client)
        admin = {"Authorization": f"Bearer {admin_token}"}
        name = f"eve{uuid.uuid4().hex[:8]}"
        credentials = {"username": name, "password": "correct-battery-horse-42"}
        assert client.post("/api/v1/auth/register", json=credentials).status_code == 201
        token = client.post("/api/v1/auth/login", json=credentials).json()["access_token"]
        attacker = {"Authorization": f"Bearer {token}"}
        poisoned = [
            client.get("/api/v1/survivors?page_size=1", headers={**attacker, **forged}) for _ in range(4)
        ]
        clean = [client.get("/api/v1/survivors?page_size=1", headers=admin) for _ in range(4)]
    links = {response.headers["Link"] for response in poisoned + clean}
    (link,) = links  # one Link for everyone, whoever asked first and whichever replica answered
    assert link.startswith("</api/v1/survivors?") and "evil" not in link
    assert {response.content for response in poisoned + clean} == {clean[0].content}
