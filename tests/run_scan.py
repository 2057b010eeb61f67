"""sqlmap and wapiti against the real app: gunicorn on loopback, a fresh database, seeded data.

Run by `make scan` as `python -m tests.run_scan` (not part of `make test`; the GitHub workflow's
security job runs it). Both scanners are Debian packages (`.ci/system-packages` installs them).
The server is the one Schemathesis drives (tests.server.whole_app_target: a fresh SQLite file,
the test admin, limits high enough that no scan request is refused for rate), with tokens that
outlive the scan and the production header set (HSTS on, as behind TLS). The run:

1. seeds the admin's survivors, a survivor account with its profile and a pending trade, and a
   keyset cursor, so every id and cursor the scanners send is real;
2. runs sqlmap once per target (list query strings and their cursor, JSON bodies of register,
   login, survivors, trades and locations, path ids marked with `*`), each bounded in time;
3. runs wapiti over the API's GET endpoints (every query parameter of openapi.yaml, with the
   ids above), or over the OpenAPI document itself with a wapiti that has `--swagger`;
4. reads the server's own access log: every response with status >= 500, and any traceback or
   error record, fails the run whatever the scanners concluded.

It exits non-zero on any injection point sqlmap reports, any vulnerability or anomaly in
wapiti's report (but the few accepted below, each with its reason), any 5xx or server error,
any scanner that failed, ran out of time or tested nothing, and any attempt to reach a host
other than 127.0.0.1: the scanners run with an HTTP proxy that is a loopback sink, which
refuses and records such requests, and wapiti's out-of-band endpoint is that same sink.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import yaml

from tests.server import ROOT, GunicornServer, kill_group, log_problems, seed_survivors, whole_app_target

SQLMAP_LEVEL = 3  # adds User-Agent and Referer to the parameters, and SQLite's time-based tests
SQLMAP_RISK = 2  # heavy time-based queries; risk 3 (OR payloads that rewrite every row) stays out
SQLMAP_PARALLEL = 3  # targets scanned at once (the server has 8 threads)
SQLMAP_TARGET_DEADLINE = 120.0  # seconds for one target: 5-30 here, the 9 fields of a survivor most
SQLMAP_BUDGET = 180.0  # seconds for all sqlmap targets together (about 40 here, on 2 CPUs)
WAPITI_CRAWL_SECONDS = 20  # --max-scan-time (wapiti 3.0 bounds the crawl with it, 3.1+ the whole scan)
WAPITI_ATTACK_SECONDS = 8  # --max-attack-time: per attack module
WAPITI_DEADLINE = 150.0  # seconds for the whole wapiti process (about 30 here)
REQUEST_TIMEOUT = 10  # seconds each scanner waits for one response

SURVIVOR_USERNAME = "scan-ada"
SURVIVOR_PASSWORD = "scan-survivor-pass-5821"

# wapiti's attack modules, where the installed version has them: injections (SQL error-based
# and time-based under either version's name, LDAP, commands, files, XSS, CRLF, XXE, SSRF, open
# redirects, Shellshock), the header checks, backup files and method tampering. Left out on
# purpose: modules that fetch databases from the internet (wapp, nikto), use DNS endpoints
# (log4shell, takeover), brute-force logins or paths (brute_login_form, buster), fingerprint CMSs
# or devices (cms, wp_enum, htp, network_device, spring4shell), or check TLS (ssl, https_redirect).
WAPITI_MODULES = (
    "sql",
    "blindsql",
    "timesql",
    "ldap",
    "exec",
    "file",
    "xss",
    "permanentxss",
    "crlf",
    "xxe",
    "ssrf",
    "redirect",
    "shellshock",
    "http_headers",
    "csp",
    "cookieflags",
    "backup",
    "htaccess",
    "methods",
    "upload",
)

# wapiti findings accepted, each narrowly (category, text in its info) and with its reason.
ACCEPTED = (
    (
        "HTTP Secure Headers",
        "X-XSS-Protection",
        "deprecated: browsers removed the XSS auditor it switched on, and OWASP advises not to "
        "send it; the API sends Content-Security-Policy: default-src 'none' instead",
    ),
)

# sqlmap output that reports an injection, or a response that leaks a DBMS error, XSS or file inclusion.
SQLMAP_FINDING = re.compile(
    r"identified the following injection point"
    r"|\bis vulnerable\b"
    r"|might be injectable"
    r"|might be vulnerable to"
)
SQLMAP_CLEAN_END = "all tested parameters do not appear to be injectable"
SQLMAP_TESTED = "testing for SQL injection on"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # noqa: T201


# --- a loopback sink: the scanners' HTTP proxy and wapiti's out-of-band endpoint --------------


class LoopbackSink:
    """Records every request. As the scanners' proxy it refuses anything bound off loopback (an
    absolute URL or CONNECT: the scanners reach 127.0.0.1 directly, NO_PROXY); as wapiti's
    endpoint it answers its result queries (get_*.php) with nothing found and records any other
    request, which only the app could have sent (an SSRF or XXE that worked)."""

    def __init__(self) -> None:
        self.egress: list[str] = []
        self.callbacks: list[str] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
                pass

            def answer(self) -> None:
                line = f"{self.command} {self.path}"
                if self.command == "CONNECT" or not self.path.startswith("/"):
                    with sink._lock:
                        sink.egress.append(line)
                    self.send_response(403)
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    return
                body = b""
                if self.path.lstrip("/").startswith("get_"):
                    body = b"{}"
                else:
                    with sink._lock:
                        sink.callbacks.append(line)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = answer  # noqa: N815
            do_CONNECT = answer  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def scanner_environ(self) -> dict[str, str]:
        """The environment of a scanner process: any request off loopback goes to this sink."""
        environ = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
        for name in ("http_proxy", "https_proxy", "all_proxy"):
            environ[name] = environ[name.upper()] = self.url
        environ["no_proxy"] = environ["NO_PROXY"] = "127.0.0.1,localhost"
        environ["TERM"] = "dumb"  # no terminal control sequences in the captured output
        return environ

    def __enter__(self) -> LoopbackSink:
        self.thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- what the scan knows about the app ----------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """Real objects and credentials: the scanners' requests name them."""

    admin_token: str
    survivor_token: str
    survivor_ids: list[str]  # the admin's seeded survivors
    own_survivor_id: str  # the survivor account's profile
    account_id: str  # the survivor account
    trade_id: str  # a pending trade the survivor proposed
    cursor: str  # an `after=` keyset cursor of the survivor list


def seed(server: GunicornServer) -> Seeded:
    """The admin's survivors (shared with Schemathesis), then a survivor account with a profile
    and a pending trade, and the cursor of the survivor list's second page."""
    admin_token, survivor_ids = seed_survivors(server)
    credentials = {"username": SURVIVOR_USERNAME, "password": SURVIVOR_PASSWORD}
    with server.client() as client:
        registered = client.post("/api/v1/auth/register", json=credentials)
        registered.raise_for_status()
        login = client.post("/api/v1/auth/login", json=credentials)
        login.raise_for_status()
        token = str(login.json()["access_token"])
        headers = {"Authorization": f"Bearer {token}"}
        profile = client.post(
            "/api/v1/survivors",
            headers=headers,
            json={
                "name": "Scan Ada",
                "age": 34,
                "gender": "female",
                "location": {"latitude": -33.92, "longitude": 18.42},
                "inventory": {"water": 5, "food": 5},
            },
        )
        profile.raise_for_status()
        trade = client.post(
            "/api/v1/trades",
            headers=headers,
            json={"partner_id": survivor_ids[0], "offer": {"water": 1}, "request": {"ammunition": 4}},
        )
        trade.raise_for_status()
        first_page = client.get(
            "/api/v1/survivors", params={"page_size": 1}, headers={"Authorization": f"Bearer {admin_token}"}
        )
        first_page.raise_for_status()
    nexts = [link["url"] for rel, link in first_page.links.items() if rel == "next"]
    if not nexts:
        raise SystemExit("scan: the survivor list's first page has no rel=next link to take a cursor from")
    cursor = parse_qs(urlsplit(nexts[0]).query)["after"][0]
    return Seeded(
        admin_token=admin_token,
        survivor_token=token,
        survivor_ids=survivor_ids,
        own_survivor_id=str(profile.json()["id"]),
        account_id=str(registered.json()["id"]),
        trade_id=str(trade.json()["id"]),
        cursor=cursor,
    )


# --- sqlmap -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One sqlmap run: a request whose parameters (query, JSON values, `*` in the path) it tests."""

    name: str
    method: str
    path: str
    token: str | None
    body: dict[str, Any] | None = None
    options: tuple[str, ...] = ()
    level: int = SQLMAP_LEVEL


# The app reads neither header: one target tests them (level 3 adds them), the others skip them.
NO_HEADERS = "--skip=user-agent,referer"


def sqlmap_targets(seeded: Seeded) -> list[Target]:
    """What sqlmap tests, the slowest first (they run SQLMAP_PARALLEL at a time).

    A write answers with a new id and timestamps each time, so its targets judge true and false
    by the status code (--code) rather than by the body.
    """
    admin, survivor = seeded.admin_token, seeded.survivor_token
    own, other, trade = seeded.own_survivor_id, seeded.survivor_ids[1], seeded.trade_id
    return [
        # Every login hashes (production Argon2id, ~0.1 s of CPU, the same for unknown users), so
        # this one is level 2 and the username only: the password never reaches SQL, only the hash.
        Target(
            "login",
            "POST",
            "/api/v1/auth/login",
            None,
            {"username": SURVIVOR_USERNAME, "password": SURVIVOR_PASSWORD},
            ("-p", "username", "--code=200", "--ignore-code=401"),
            level=2,
        ),
        # A taken username: every answer is the same 409 (a new one would be 201, then 409); a
        # valid password is hashed before the conflict, so the username only here too.
        Target(
            "register",
            "POST",
            "/api/v1/auth/register",
            None,
            {"username": SURVIVOR_USERNAME, "password": "scan-newcomer-pass-3307"},
            ("-p", "username", "--code=409"),
        ),
        Target(
            "survivor-create",
            "POST",
            "/api/v1/survivors",
            admin,
            {
                "name": "Scan Bob",
                "age": 41,
                "gender": "male",
                "location": {"latitude": 10.5, "longitude": -20.25},
                "inventory": {"water": 2, "food": 1, "medication": 0, "ammunition": 3},
            },
            (NO_HEADERS, "--code=201"),
        ),
        Target(
            "trade-create",
            "POST",
            "/api/v1/trades",
            survivor,
            {"partner_id": seeded.survivor_ids[1], "offer": {"food": 1}, "request": {"ammunition": 3}},
            (NO_HEADERS, "--code=201"),
        ),
        Target(
            "location-update",
            "PUT",
            f"/api/v1/survivors/{own}/location",
            survivor,
            {"latitude": -33.5, "longitude": 18.5},
            (NO_HEADERS, "--code=200"),
        ),
        Target("survivor-list", "GET", "/api/v1/survivors?page=1&page_size=5&infected=true", admin),
        Target(
            "survivor-list-cursor",
            "GET",
            f"/api/v1/survivors?page_size=1&after={seeded.cursor}",
            admin,
            options=(NO_HEADERS,),
        ),
        Target(
            "trade-list",
            "GET",
            "/api/v1/trades?page=1&page_size=5&status=pending",
            survivor,
            options=(NO_HEADERS,),
        ),
        Target(
            "robot-list",
            "GET",
            "/api/v1/robots?page=1&page_size=5&category=Flying",
            admin,
            options=(NO_HEADERS,),
        ),
        Target("account-list", "GET", "/api/v1/accounts?page=1&page_size=5", admin, options=(NO_HEADERS,)),
        Target(
            "report-list",
            "GET",
            "/api/v1/reports/non-infected-survivors?page=1&page_size=5",
            admin,
            options=(NO_HEADERS,),
        ),
        Target("survivor-by-id", "GET", f"/api/v1/survivors/{other}*", admin, options=(NO_HEADERS,)),
        Target(
            "inventory-by-id", "GET", f"/api/v1/survivors/{own}*/inventory", survivor, options=(NO_HEADERS,)
        ),
        Target("trade-by-id", "GET", f"/api/v1/trades/{trade}*", survivor, options=(NO_HEADERS,)),
    ]


@dataclass
class Phase:
    """One scanner's part of the run: what it found, what went wrong, what the server saw."""

    name: str
    seconds: float = 0.0
    findings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failing_requests: list[str] = field(default_factory=list)  # answered >= 500, as the scanner sent them
    log: str = ""  # the server's output during this phase

    def access_lines(self) -> list[dict[str, Any]]:
        return access_lines(self.log)


def access_lines(output: str) -> list[dict[str, Any]]:
    """The server's JSON access log lines (one per request) in `output`."""
    entries = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == "resistance.access":
            entries.append(entry)
    return entries


def run_bounded(command: list[str], log_path: Path, environ: dict[str, str], deadline: float) -> int | None:
    """Run a scanner from the repository root, output to log_path; its exit code, None on timeout.

    It runs in its own process group, killed whole at the deadline.
    """
    with (
        log_path.open("wb") as log,
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ) as process,
    ):
        try:
            return process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            kill_group(process.pid)
            process.wait()
            return None


def run_sqlmap(
    phase: Phase, server: GunicornServer, targets: list[Target], dbms: str, workdir: Path, sink: LoopbackSink
) -> None:
    """Every target, one sqlmap process each, SQLMAP_PARALLEL at a time, within SQLMAP_BUDGET."""
    started = time.monotonic()
    end = started + SQLMAP_BUDGET
    lock = threading.Lock()

    def scan(target: Target) -> None:
        remaining = end - time.monotonic()
        if remaining < 5:
            with lock:
                phase.errors.append(f"{target.name}: not run, sqlmap's {SQLMAP_BUDGET:g}s were spent")
            return
        deadline = min(SQLMAP_TARGET_DEADLINE, remaining)
        directory = workdir / "sqlmap" / target.name
        directory.mkdir(parents=True)
        (directory / "targets.txt").write_text(server.base_url + target.path + "\n")
        # A fixed request id: the app echoes it, so answers differ only where the payload made them
        # differ, and the server's log lines name the target.
        headers = [f"X-Request-ID: scan-sqlmap-{target.name}"]
        if target.token:
            headers.append(f"Authorization: Bearer {target.token}")
        command = [
            "sqlmap",
            "-m",
            str(directory / "targets.txt"),
            "--batch",
            "--answers=extending=N",  # never widen level and risk past the ones given here
            f"--level={target.level}",
            f"--risk={SQLMAP_RISK}",
            f"--dbms={dbms}",
            f"--timeout={REQUEST_TIMEOUT}",
            "--retries=1",
            "--skip-waf",  # its probe is one more rejected request: the app has no WAF to find
            "--disable-coloring",
            f"--output-dir={directory / 'output'}",
            f"--results-file={directory / 'results.csv'}",
            "-t",
            str(directory / "traffic.txt"),
            "--headers=" + "\n".join(headers),
            *target.options,
        ]
        if target.method != "GET":
            command.append(f"--method={target.method}")
        if target.body is not None:
            command.append("--data=" + json.dumps(target.body))
        log_path = directory / "sqlmap.log"
        target_started = time.monotonic()
        status = run_bounded(command, log_path, sink.scanner_environ(), deadline)
        output = log_path.read_text(errors="replace")
        tested = output.count(SQLMAP_TESTED)
        errors = []
        if status is None:
            errors.append(f"{target.name}: sqlmap did not finish within {deadline:.0f}s")
        elif status != 0:
            errors.append(f"{target.name}: sqlmap exited {status}:\n{tail(output)}")
        elif tested == 0:
            errors.append(f"{target.name}: sqlmap tested no parameter:\n{tail(output)}")
        for line in output.splitlines():
            if ("[CRITICAL]" in line or "[ERROR]" in line) and SQLMAP_CLEAN_END not in line:
                errors.append(f"{target.name}: {line.strip()}")
        with lock:
            say(
                f"sqlmap {target.name}: {target.method} {target.path.split('?')[0]} "
                f"({tested} parameter(s), {time.monotonic() - target_started:.0f}s)"
            )
            phase.findings += sqlmap_findings(target, directory, output)
            phase.errors += errors
            phase.failing_requests += failing_requests(directory / "traffic.txt")

    with ThreadPoolExecutor(max_workers=SQLMAP_PARALLEL) as pool:
        list(pool.map(scan, targets))
    phase.seconds = time.monotonic() - started


def sqlmap_findings(target: Target, directory: Path, output: str) -> list[str]:
    """Injection points from the results CSV, sqlmap's per-target log and its output."""
    findings = []
    results = directory / "results.csv"
    if results.exists():
        with results.open(newline="") as handle:
            for row in csv.DictReader(handle):
                findings.append(f"{target.name}: injection: {json.dumps(row)}")
    for log in (directory / "output").glob("*/log"):
        if log.stat().st_size:
            findings.append(
                f"{target.name}: sqlmap logged injection points:\n{log.read_text(errors='replace')}"
            )
    for line in output.splitlines():
        if SQLMAP_FINDING.search(line):
            findings.append(f"{target.name}: {line.strip()}")
    return findings


TRAFFIC_ENTRY = re.compile(
    r"HTTP request \[#\d+\]:\n(.*?)\n\nHTTP response \[#\d+\] \((\d+)([^)]*)\):\n", re.S
)


def failing_requests(path: Path) -> list[str]:
    """The requests of sqlmap's traffic file (-t) answered with status >= 500, as sent."""
    if not path.exists():
        return []
    return [
        f"{request}\n-> {status}{reason}"
        for request, status, reason in TRAFFIC_ENTRY.findall(path.read_text(errors="replace"))
        if int(status) >= 500
    ]


def tail(output: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in output.strip().splitlines()[-lines:])


# --- wapiti -------------------------------------------------------------------------------------


def wapiti_options(wapiti: str, environ: dict[str, str]) -> tuple[set[str], list[str]]:
    """The long options of this wapiti (3.0 has no --swagger, 3.1+ has) and its attack modules."""
    helped = subprocess.run(
        [wapiti, "--help"], capture_output=True, text=True, timeout=60, env=environ, check=False
    )
    listed = subprocess.run(
        [wapiti, "--list-modules"], capture_output=True, text=True, timeout=60, env=environ, check=False
    )
    modules = re.findall(r"^\t(\w+)(?: \(used by default\))?$", listed.stdout, re.M)
    return set(re.findall(r"--[a-z][a-z-]+", helped.stdout)), modules


def openapi_here(server: GunicornServer, token: str, path: Path) -> Path:
    """The OpenAPI document the app serves, its server the loopback one (wapiti keeps only the
    operations under the document's own `servers`, which name the production host)."""
    with server.client() as client:
        served = client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"})
        served.raise_for_status()
    document = served.json()
    document["servers"] = [{"url": server.base_url}]
    path.write_text(json.dumps(document))
    return path


def start_urls(base_url: str, seeded: Seeded) -> list[str]:
    """Every GET operation of openapi.yaml as a URL: path ids of seeded objects, each query
    parameter with a valid value (so wapiti attacks each one from a request that succeeds)."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    ids = {
        "survivor_id": seeded.own_survivor_id,
        "trade_id": seeded.trade_id,
        "account_id": seeded.account_id,
    }
    urls = []
    for template, operations in spec["paths"].items():
        operation = operations.get("get")
        if operation is None or template == "/metrics":  # /metrics takes its own token
            continue
        path = str(template)
        for name, value in ids.items():
            path = path.replace("{" + name + "}", value)
        query = {}
        for parameter in operation.get("parameters", []):
            if "$ref" in parameter or parameter.get("in") != "query":
                continue  # the conditional headers (If-None-Match)
            example = sample(parameter["name"], parameter.get("schema", {}), seeded)
            if example is not None:
                query[parameter["name"]] = example
        urls.append(base_url + path + ("?" + urlencode(query) if query else ""))
    return urls


def sample(name: str, schema: dict[str, Any], seeded: Seeded) -> str | None:
    """A valid value for a query parameter, or None to leave it out."""
    if name == "after":
        return seeded.cursor
    if name == "before":
        return None  # one cursor per URL: `after` has it
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "boolean":
        return "true"
    if schema.get("type") == "integer":
        return "5" if name == "page_size" else str(schema.get("minimum", 1))
    return None


def run_wapiti(
    phase: Phase, server: GunicornServer, seeded: Seeded, wapiti: str, workdir: Path, sink: LoopbackSink
) -> None:
    """wapiti over the GET operations (or, with --swagger, the OpenAPI document) of the app."""
    started = time.monotonic()
    directory = workdir / "wapiti"
    config = directory / "config"
    config.mkdir(parents=True)
    # wapiti 3.0 loads every module, and the Wappalyzer one downloads its database when it finds
    # none: an empty one keeps it home (the module is not run).
    (config / "apps.json").write_text("{}")
    flags, available = wapiti_options(wapiti, sink.scanner_environ())
    modules = [module for module in WAPITI_MODULES if module in available]
    if not modules:
        phase.errors.append(
            f"wapiti lists none of the attack modules this scan uses ({', '.join(WAPITI_MODULES)})"
        )
        return
    report = directory / "report.json"
    command = [
        wapiti,
        "--url",
        server.base_url + "/",
        "--scope",
        "folder",
        "--module",
        ",".join(modules),
        "--level",
        "2",  # also inject into the query string of URLs that have no parameter
        "--header",
        f"Authorization: Bearer {seeded.admin_token}",
        "--header",
        "X-Request-ID: scan-wapiti",  # echoed: answers differ only where a payload made them
        "--max-scan-time",
        str(WAPITI_CRAWL_SECONDS),
        "--max-attack-time",
        str(WAPITI_ATTACK_SECONDS),
        "--timeout",
        str(REQUEST_TIMEOUT),
        "--endpoint",
        sink.url + "/",
        "--no-bugreport",
        "--flush-session",
        "--store-session",
        str(directory / "session"),
        "--store-config",
        str(config),
        "--format",
        "json",
        "--output",
        str(report),
        "--verbose",
        "1",
    ]
    if "--dns-endpoint" in flags:
        # wapiti 3.1+ resolves its Log4Shell DNS endpoint at start even when that module is not run.
        command += ["--dns-endpoint", "127.0.0.1"]
    if "--swagger" in flags:
        command += ["--swagger", str(openapi_here(server, seeded.admin_token, directory / "openapi.json"))]
        say("wapiti: the API's operations from its OpenAPI document (--swagger)")
    else:
        urls = start_urls(server.base_url, seeded)
        for url in urls:
            command += ["--start", url]
        say(f"wapiti: no --swagger in this version: {len(urls)} GET operations of openapi.yaml as start URLs")
    say(f"wapiti: modules {', '.join(modules)}")
    log_path = directory / "wapiti.log"
    status = run_bounded(command, log_path, sink.scanner_environ(), WAPITI_DEADLINE)
    phase.seconds = time.monotonic() - started
    output = log_path.read_text(errors="replace")
    if status is None:
        phase.errors.append(f"wapiti did not finish within {WAPITI_DEADLINE:g}s:\n{tail(output)}")
    elif status != 0:
        phase.errors.append(f"wapiti exited {status}:\n{tail(output)}")
    if "Traceback" in output:
        phase.errors.append(f"wapiti raised (see {log_path}):\n{tail(output)}")
    if not report.exists():
        phase.errors.append(f"wapiti wrote no report:\n{tail(output)}")
        return
    for kind, category, entry in wapiti_entries(json.loads(report.read_text())):
        info = str(entry.get("info", ""))
        accepted = [reason for name, text, reason in ACCEPTED if name == category and text in info]
        text = f"{kind} {category}: {info} [{entry.get('method')} {entry.get('path')}]"
        if accepted:
            say(f"wapiti: accepted {text}: {accepted[0]}")
            continue
        request = entry.get("http_request") or entry.get("curl_command")
        phase.findings.append(text + (f"\n      {request}".replace("\n", "\n      ") if request else ""))


def wapiti_entries(report: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(vulnerability or anomaly, category, entry) for every finding in a wapiti JSON report."""
    for section, kind in (("vulnerabilities", "vulnerability"), ("anomalies", "anomaly")):
        for category, entries in (report.get(section) or {}).items():
            for entry in entries:
                yield kind, category, entry


# --- the run ------------------------------------------------------------------------------------


def server_errors(phase: Phase) -> list[str]:
    """Every response with status >= 500 the server logged during the phase."""
    return [
        f"{entry.get('status')} {entry.get('method')} {entry.get('path')} (id {entry.get('request_id')})"
        for entry in phase.access_lines()
        if int(entry.get("status") or 0) >= 500
    ]


def is_server_error(line: str) -> bool:
    """An access line with status >= 500 (server_errors lists those, with their requests)."""
    return any(int(entry.get("status") or 0) >= 500 for entry in access_lines(line))


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.run_scan", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SCAN_DATABASE_URL"),
        help="PostgreSQL to EMPTY and scan on ($SCAN_DATABASE_URL; a database named as a test "
        "database, e.g. scan_test; default: a fresh SQLite file)",
    )
    parser.add_argument("--keep", type=Path, help="copy the scanners' logs and reports into this directory")
    parser.add_argument("--skip-sqlmap", action="store_true", help="run wapiti only")
    parser.add_argument("--skip-wapiti", action="store_true", help="run sqlmap only")
    return parser.parse_args(argv)


def prepare_database(url: str | None) -> tuple[str | None, str]:
    """The database URL for the server (None: SQLite in the run's directory) and sqlmap's --dbms."""
    if not url:
        return None, "SQLite"
    if not url.startswith("postgresql"):
        raise SystemExit(f"scan: --database-url takes PostgreSQL (SQLite is the default): {url}")
    from tests.conftest import postgres_problem, refusal_to_empty, reset_postgres

    refusal = refusal_to_empty(url)
    if refusal:
        raise SystemExit(f"scan: {refusal}")
    problem = postgres_problem(url)
    if problem:
        raise SystemExit(f"scan: PostgreSQL at {url} is not reachable ({problem})")
    reset_postgres(url)
    return url, "PostgreSQL"


def main(argv: list[str]) -> int:
    options = parse_arguments(argv)
    started = time.monotonic()
    wapiti = os.environ.get("WAPITI") or shutil.which("wapiti")
    missing = [name for name, found in (("sqlmap", shutil.which("sqlmap")), ("wapiti", wapiti)) if not found]
    if missing:
        say(f"scan: {' and '.join(missing)} missing: install once, as root, with .ci/system-packages")
        return 2
    assert wapiti is not None
    db_url, dbms = prepare_database(options.database_url)
    phases: list[Phase] = []
    settings = {"JWT_ACCESS_TTL": "3600", "HSTS_ENABLED": "true"}
    with (
        tempfile.TemporaryDirectory(prefix="scan-") as temporary,
        LoopbackSink() as sink,
        whole_app_target("scan-server-", db_url, **settings) as server,
    ):
        workdir = Path(temporary)

        def begin(phase: Phase) -> Phase:
            """The server's output since the previous phase began is that phase's."""
            if phases:
                phases[-1].log = server.output_since_mark()
            server.mark()
            phases.append(phase)
            return phase

        with server:
            seeding = begin(Phase("seed"))
            seeded = seed(server)
            seeding.seconds = time.monotonic() - started  # with the server's start
            say(f"scan: {server.base_url} on {dbms}, seeded; scanning")
            if not options.skip_sqlmap:
                sqlmap = begin(Phase("sqlmap"))
                run_sqlmap(sqlmap, server, sqlmap_targets(seeded), dbms, workdir, sink)
            if not options.skip_wapiti:
                run_wapiti(begin(Phase("wapiti")), server, seeded, wapiti, workdir, sink)
        phases[-1].log = server.output_since_mark()  # the server has stopped: every line is written
        if options.keep:
            shutil.copytree(workdir, options.keep, dirs_exist_ok=True)
            shutil.copy(server.log_path, options.keep / "gunicorn.log")
    return report(phases, sink, time.monotonic() - started)


def listed(heading: str, items: list[str]) -> bool:
    """Print a heading and the first 50 items, when there are any; True when there were."""
    if not items:
        return False
    say(f"\n{heading}:")
    for item in items[:50]:
        say("  - " + item.replace("\n", "\n    "))
    return True


def report(phases: list[Phase], sink: LoopbackSink, seconds: float) -> int:
    """Print the findings and the summary; the exit status (1 when anything failed)."""
    failed = False
    rows: list[tuple[str, int, int, int, float]] = []
    for phase in phases:
        errors = server_errors(phase)
        problems = [line for line in log_problems(phase.log) if not is_server_error(line)]
        rows.append((phase.name, len(phase.access_lines()), len(phase.findings), len(errors), phase.seconds))
        for title, items in (
            ("finding(s)", phase.findings),
            ("response(s) with status >= 500 in the server's log", errors),
            ("request(s) answered >= 500, as the scanner sent them", phase.failing_requests),
            ("other server problem line(s)", problems),
            ("error(s): the scan is incomplete", phase.errors),
        ):
            failed = listed(f"{phase.name}: {len(items)} {title}", items) or failed
    for title, items in (
        ("request(s) bound off loopback, refused", sink.egress),
        ("out-of-band request(s) to wapiti's endpoint (SSRF/XXE)", sink.callbacks),
    ):
        failed = listed(f"{len(items)} {title}", items) or failed
    say("\nscan summary")
    say(f"  {'phase':<8} {'requests':>9} {'findings':>9} {'5xx':>5} {'seconds':>8}")
    for name, requests, findings, fives, spent in rows:
        say(f"  {name:<8} {requests:>9} {findings:>9} {fives:>5} {spent:>8.0f}")
    requests, findings, fives = (sum(column) for column in list(zip(*rows, strict=True))[1:4])
    say(f"  {'total':<8} {requests:>9} {findings:>9} {fives:>5} {seconds:>8.0f}  (wall clock)")
    say("scan: FAILED" if failed else "scan: passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
