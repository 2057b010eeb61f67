"""Security: tokens and sessions, who may call what, rate limits, body rules and headers.

The order in which these run on a request is written once, in api/pipeline.py.
"""

from __future__ import annotations

from flask import Flask

from security import jwt
from security.jwt import AccountLoader


def init_app(app: Flask, load_account: AccountLoader) -> None:
    """Bind the JWT manager: load_account(sub) returns the enabled account or None."""
    jwt.init_app(app, load_account)
