"""Serve Swagger UI's files from the installed swagger_ui_bundle package and our own page."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from security.permissions import public

HERE = Path(__file__).parent / "static"
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
        return send_from_directory(str(swagger_ui_path), filename, max_age=3600)
    return send_from_directory(HERE, filename, max_age=0)
