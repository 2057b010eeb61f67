"""/api/v1/accounts: admin account management."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_jwt_extended import current_user

from api.accounts import services
from api.accounts.schemas import (
    AccountCreateSchema,
    AccountPageSchema,
    AccountQuerySchema,
    AccountSchema,
    AccountUpdateSchema,
)
from api.openapi import Blueprint
from api.pagination import Window, page_response
from security.permissions import role_required

blp = Blueprint("accounts", __name__, url_prefix="/api/v1/accounts", description="Admin only.")

# OpenAPI links: what a client (and a stateful fuzzer) can do next with the account just made.
CREATED_LINKS = {
    "UpdateAccount": {
        "operationId": "patchAccountById",
        "parameters": {"account_id": "$response.body#/id"},
        "description": "Change the new account's role, or disable it.",
    }
}


@blp.route("")
class Accounts(MethodView):
    @role_required("admin")
    @blp.arguments(AccountQuerySchema, location="query")
    @blp.response(200, AccountPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List accounts.

        Admin only. A page in a stable order; never a password hash.
        """
        window = Window.of(query)
        items, total = services.list_accounts(window)
        return page_response(window, items, total)

    @role_required("admin")
    @blp.arguments(AccountCreateSchema)
    @blp.response(201, AccountSchema, headers={"Location": "Location"})
    @blp.alt_response(409, "Conflict")
    @blp.doc(responses={201: {"links": CREATED_LINKS}})
    def post(self, body: dict[str, Any]) -> Any:
        """Create an account with any role.

        Admin only. A username taken in any letter case is 409; a short or common password is
        422. The 201 carries the account's Location (where PATCH changes it).
        """
        account = services.create_account(body["username"], body["password"], body["role"])
        return account, {"Location": url_for("accounts.AccountById", account_id=account.id)}


@blp.route("/<uuid:account_id>")
class AccountById(MethodView):
    @role_required("admin")
    # Every member is optional and {} changes nothing, so a missing body is the same no-op.
    @blp.arguments(AccountUpdateSchema, required=False)
    @blp.response(200, AccountSchema)
    @blp.alt_response(409, "Conflict")
    def patch(self, body: dict[str, Any], account_id: uuid.UUID) -> Any:
        """Change an account's role, disable / enable it, or reset its password.

        Admin only. Disabling makes every token of the account fail at once (and tokens issued
        before stay dead after re-enabling); a role change applies from the next request; a new
        password (the rules of registration, else 422) ends every session of the account.
        """
        return services.update_account(current_user, account_id, body)
