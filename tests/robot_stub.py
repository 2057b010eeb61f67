"""A real HTTP server on 127.0.0.1 (port 0, in a thread) playing a healthy, slow or hostile Robot CPU."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

SNAPSHOT = json.loads(
    (Path(__file__).resolve().parent.parent / "api/robots/robotcpu-snapshot.json").read_text()
)
TRICKLE_GAP = 0.2


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still trickling must not hold up the test's exit

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up on a slow answer is expected here: stay quiet."""


class RobotStub:
    """Serves `behaviour` on every path; counts the requests it got."""

    def __init__(self, behaviour: str = "healthy", **options: Any) -> None:
        self.behaviour = behaviour
        self.options = options
        self.calls = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
                pass

            def do_GET(self) -> None:  # noqa: N802 - the base's name
                with stub._lock:
                    stub.calls += 1
                stub.answer(self)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/robotcpu"

    def __enter__(self) -> RobotStub:
        self.thread.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _v: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # --- behaviours --------------------------------------------------------------------------

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        getattr(self, "_" + self.behaviour)(handler)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _raw(self, handler: BaseHTTPRequestHandler) -> None:
        self._send(handler, 200, self.options["body"])

    def _json(self, handler: BaseHTTPRequestHandler) -> None:
        self._send(handler, 200, json.dumps(self.options["data"]).encode())

    def _healthy(self, handler: BaseHTTPRequestHandler) -> None:
        delay = self.options.get("delay", 0)
        if delay:
            time.sleep(delay)
        self._send(handler, 200, json.dumps(self.options.get("data", SNAPSHOT)).encode())

    def _error(self, handler: BaseHTTPRequestHandler) -> None:
        self._send(handler, 500, b'{"error": "boom"}')

    def _slow(self, handler: BaseHTTPRequestHandler) -> None:
        time.sleep(self.options.get("delay", 3.0))
        self._send(handler, 200, json.dumps(SNAPSHOT).encode())

    def _trickle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps(SNAPSHOT).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        try:
            for index in range(len(body)):
                handler.wfile.write(body[index : index + 1])
                handler.wfile.flush()
                time.sleep(TRICKLE_GAP)
        except OSError:
            return  # the client gave up, as it should

    def _html(self, handler: BaseHTTPRequestHandler) -> None:
        self._send(handler, 200, b"<html><body>Service Unavailable</body></html>", "text/html")

    def _object(self, handler: BaseHTTPRequestHandler) -> None:
        self._send(handler, 200, json.dumps({"robots": SNAPSHOT}).encode())

    def _huge(self, handler: BaseHTTPRequestHandler) -> None:
        """2 MiB of valid JSON, sent chunked (no Content-Length to refuse up front)."""
        record = json.dumps(SNAPSHOT[0]).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            chunks = [b"["] + [record + b","] * (2 * 1024 * 1024 // (len(record) + 1)) + [record + b"]"]
            for chunk in chunks:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            return

    def _huge_declared(self, handler: BaseHTTPRequestHandler) -> None:
        """2 MiB announced by Content-Length: refused before reading."""
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(2 * 1024 * 1024))
        handler.end_headers()
        try:
            handler.wfile.write(b"[" + b" " * (2 * 1024 * 1024 - 2) + b"]")
        except OSError:
            return

    def _redirect(self, handler: BaseHTTPRequestHandler) -> None:
        self._send(handler, 302, b"", headers={"Location": self.options["location"]})


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """call() and how long it took, in seconds."""
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started
