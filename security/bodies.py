"""The one place a request body is read: media type, size, framing, then I-JSON (RFC 7493).

Runs as a before_request hook after authentication (401 wins over 413/415/400), only when a
route matched (an unknown path or method stays 404/405 whatever the body). It reads the whole
body at once, bounded by MAX_CONTENT_LENGTH, so every failure of the transport shows up here and
nowhere else: broken chunked framing, a body shorter than its Content-Length, a client that
hangs up. Each is the client's 400, logged as such, never our 500. The parsed document goes to
the arguments parser (api/arguments.py), which never reads the stream itself.
"""

from __future__ import annotations

import io
import logging

from flask import current_app, request
from gunicorn.http.errors import ParseException

from api.arguments import remember_body
from api.problems import ProblemError
from security import ijson

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UTF_8 = ("utf-8", "utf8")
log = logging.getLogger("resistance")

_UNREADABLE = "The request body could not be read: broken framing, or the client stopped sending."


def read_json_body() -> None:
    """415 for a body that is not JSON (or declared in another charset than UTF-8, or content-
    coded), 413 over the limit, 400 unreadable or not I-JSON."""
    if request.method not in BODY_METHODS or request.routing_exception is not None:
        return
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    # A chunked body the server did not frame (no wsgi.input_terminated) cannot be read safely:
    # like Werkzeug's safe fallback, it is judged as no body at all.
    if not (request.content_length or (chunked and request.environ.get("wsgi.input_terminated"))):
        return
    if request.mimetype != "application/json":
        raise ProblemError(415, "Send the body as application/json.")
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        # RFC 9110 §15.5.16: a content coding the server does not decode is 415, never a body
        # read as if it were plain (gzip bytes judged as JSON, or worse, taken as it is).
        raise ProblemError(415, "Send the body without a Content-Encoding.")
    if request.mimetype_params.get("charset", "utf-8").lower() not in UTF_8:
        raise ProblemError(415, "JSON is UTF-8 (RFC 8259 §8.1): send no charset, or charset=utf-8.")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise ProblemError(413, f"The body must be at most {limit} bytes.")
    raw = _read(limit)
    request.environ["wsgi.input"] = io.BytesIO(raw)  # anything after us reads the same bytes
    try:
        remember_body(ijson.loads(raw))
    except ijson.NotIJSON as error:
        raise ProblemError(400, str(error)) from None


def _read(limit: int) -> bytes:
    """The whole body: its Content-Length, or a chunked stream up to one byte over the limit.

    Werkzeug would silently cut a streamed body at the limit (so a padded body could pass as
    valid JSON): reading one byte more tells "at most" from "over".
    """
    expected = request.content_length
    wanted = limit + 1 if expected is None else expected
    stream = request.environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    try:
        while size < wanted:
            chunk = stream.read(wanted - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (OSError, ParseException) as error:  # gunicorn's framing errors, resets, timeouts
        raise _unreadable(type(error).__name__) from None
    if size > limit:
        raise ProblemError(413, f"The body must be at most {limit} bytes.")
    if expected is not None and size < expected:
        raise _unreadable("ShortBody")
    return b"".join(chunks)


def _unreadable(cause: str) -> ProblemError:
    """The client's 400 for a body it did not deliver, logged as the client's (info), not ours."""
    log.info("request body unreadable", extra={"error": cause})
    return ProblemError(400, _UNREADABLE)
