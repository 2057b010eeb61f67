"""Serve Swagger UI's files from the installed swagger-ui-py package and our own page.

swagger-ui-py carries Swagger UI 5, which reads OpenAPI 3.1 (the older swagger-ui-bundle stopped
at 4.15, which shows nothing for a 3.1 document); only its static files are used."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from security.permissions import public

HERE = Path(__file__).parent / "static"
SWAGGER_UI = Path(str(files("swagger_ui") / "static"))
VENDOR_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})

bp = Blueprint("docs", __name__, url_prefix="/docs")


@bp.get("")
@public
def page() -> Response:
    """The Swagger UI page; its script and styles come from /docs/ only (CSP 'self')."""
    return send_from_directory(HERE, "index.html", max_age=0)


@bp.get("/<path:filename>")
@public
def asset(filename: str) -> Response:
    """Swagger UI's own files, or our initializer."""
    if filename in VENDOR_FILES:
        return send_from_directory(SWAGGER_UI, filename, max_age=3600)
    return send_from_directory(HERE, filename, max_age=0)
