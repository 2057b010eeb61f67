"""The ceiling: a bare Flask app whose one route returns a small JSON object.

No database, no extensions, no hooks: what Flask and gunicorn alone cost per request on this
machine, served with the API's own gunicorn settings (bench/ceiling_gunicorn.py). The API's
scenarios are reported as a ratio to it.

`/healthz` is only for the harness's start-up probe (tests/server.py's GunicornServer waits for
its X-Request-ID to show up in the server's output, as the API's access log would write it);
the benchmark drives `/ceiling`.
"""

from __future__ import annotations

import json
import sys

from flask import Flask, request

app = Flask(__name__)


@app.get("/ceiling")
def ceiling() -> dict[str, str]:
    """Return a small JSON object."""
    return {"status": "ok"}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer the start-up probe and write its request id where the harness looks for it."""
    sys.stdout.write(json.dumps({"request_id": request.headers.get("X-Request-ID", "")[:128]}) + "\n")
    sys.stdout.flush()
    return {"status": "ok"}
