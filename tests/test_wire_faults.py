"""What only a real gunicorn sees: raw bytes a client sends that no HTTP library would.

The kind: a body the server cannot read (broken chunked framing, a body shorter than its
Content-Length, a client that hangs up mid-body) is the client's 400 problem, never our 500,
and is not logged as our error; an HTTP/1.1 request without Host is 400; the Host a client
sends never shows up in what the API emits.
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkSize, NoMoreData

from tests.conftest import assert_problem
from tests.server import ADMIN_PASSWORD, GunicornServer, log_problems, seed_survivors, server_environ

pytestmark = pytest.mark.gunicorn

LOGIN = "/api/v1/auth/login"
DEADLINE = 10.0


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    directory: Path = tmp_path_factory.mktemp("wire")
    url = db_url if db_url.startswith("postgresql") else f"sqlite:///{directory}/wire.db"
    with GunicornServer(server_environ(url), directory / "server.log") as running:
        yield running


@pytest.fixture
def live(server: GunicornServer) -> Iterator[GunicornServer]:
    """The server, and after the test: nothing in its output shows a failure of ours."""
    server.mark()
    yield server
    time.sleep(0.2)  # the access line of a request whose client left may come a moment later
    problems = log_problems(server.output_since_mark())
    assert not problems, "\n".join(problems)


def exchange(server: GunicornServer, raw: bytes, *, close_after_send: bool = False) -> bytes:
    """Send raw bytes on a fresh connection; what came back (b"" when nothing did)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as connection:
        connection.sendall(raw)
        if close_after_send:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return received


def status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.strip() else {}


def request_head(path: str, *lines: str, method: str = "POST", host: str | None = "127.0.0.1") -> bytes:
    head = [f"{method} {path} HTTP/1.1", *([f"Host: {host}"] if host is not None else []), *lines]
    return ("\r\n".join([*head, "Connection: close"]) + "\r\n\r\n").encode()


CHUNKED = ("Content-Type: application/json", "Transfer-Encoding: chunked")


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # a chunk size that is not hex
        b"2\r\n{}XX0\r\n\r\n",  # a chunk without its CRLF terminator
        b"ffffffffffffffffffff\r\n{}\r\n",  # a chunk size past any limit
        b"5\r\n{}",  # the stream ends inside a chunk
    ],
)
def test_broken_chunked_body_is_400_problem(live, body):
    raw = exchange(live, request_head(LOGIN, *CHUNKED) + body, close_after_send=True)
    status, problem = status_and_body(raw)
    assert status == 400, raw
    assert problem["status"] == 400 and problem["type"].endswith("/bad-request")


def test_body_shorter_than_content_length_is_400_problem(live):
    head = request_head(LOGIN, "Content-Type: application/json", "Content-Length: 200")
    raw = exchange(live, head + b'{"username": "admin"', close_after_send=True)
    status, problem = status_and_body(raw)
    assert status == 400, raw
    assert "could not be read" in problem["detail"]


def test_client_hanging_up_mid_body_is_not_our_error(live):
    head = request_head(LOGIN, "Content-Type: application/json", "Content-Length: 5000")
    with socket.create_connection(("127.0.0.1", live.port), timeout=DEADLINE) as connection:
        connection.sendall(head + b'{"username": "admin", "password": "')
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # The `live` fixture asserts the server logged no error and no 5xx for it.
    with live.client() as client:
        assert client.get("/healthz").status_code == 200


def test_valid_chunked_login_still_works(live):
    document = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(document), document)
    status, tokens = status_and_body(exchange(live, request_head(LOGIN, *CHUNKED) + body))
    assert status == 200 and tokens["token_type"] == "Bearer"


def test_http11_request_without_host_is_400_problem(live):
    raw = exchange(live, request_head("/healthz", method="GET", host=None))
    status, problem = status_and_body(raw)
    assert status == 400, raw
    assert "Host" in problem["detail"]


def test_host_header_never_reaches_links(live):
    token, _ids = seed_survivors(live)
    raw = exchange(
        live,
        request_head(
            "/api/v1/survivors?page_size=1",
            f"Authorization: bearer {token}",
            method="GET",
            host="evil.example",
        ),
    )
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
    (link,) = [line for line in head.split("\r\n") if line.lower().startswith("link:")]
    assert "evil" not in link and "</api/v1/survivors?" in link


# --- the same failures as a WSGI server hands them to the app (in-process) -------------------


class FailingStream(io.RawIOBase):
    """A wsgi.input that yields `head` and then fails the way gunicorn's readers do."""

    def __init__(self, head: bytes, error: Exception) -> None:
        self.head, self.error = head, error

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        if self.head:
            chunk, self.head = self.head, b""
            return chunk
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        InvalidChunkSize(b"zz"),
        ChunkMissingTerminator(b"XX"),
        NoMoreData(b""),
        ConnectionResetError(104, "reset"),
    ],
    ids=["chunk-size", "chunk-terminator", "no-more-data", "reset"],
)
@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_body_read_failure_is_400_and_logged_as_the_clients(client, caplog, error, framing):
    environ: dict[str, Any] = {
        "wsgi.input": FailingStream(b'{"username": ', error),
        "wsgi.input_terminated": True,
        "CONTENT_TYPE": "application/json",
    }
    if framing == "chunked":
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ.pop("CONTENT_LENGTH", None)
    else:
        environ["CONTENT_LENGTH"] = "100"
    response = client.post(LOGIN, environ_overrides=environ)
    assert_problem(response, 400)
    unreadable = [record for record in caplog.records if record.getMessage() == "request body unreadable"]
    assert [record.levelname for record in unreadable] == ["INFO"]
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]


def test_body_shorter_than_content_length_in_process_is_400(client):
    environ = {
        "wsgi.input": io.BytesIO(b'{"username": "a"}'),
        "wsgi.input_terminated": True,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "64",
    }
    response = client.post(LOGIN, environ_overrides=environ)
    assert "could not be read" in assert_problem(response, 400)["detail"]
