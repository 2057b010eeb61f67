"""/api/v1/accounts: admin account management."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from api.accounts import services
from api.accounts.schemas import (
    AccountCreateSchema,
    AccountPageSchema,
    AccountQuerySchema,
    AccountSchema,
    AccountUpdateSchema,
)
from api.pagination import paginated
from security.permissions import role_required

blp = Blueprint("accounts", __name__, url_prefix="/api/v1/accounts", description="Admin only.")


@blp.route("")
class Accounts(MethodView):
    @role_required("admin")
    @blp.arguments(AccountQuerySchema, location="query")
    @blp.response(200, AccountPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List accounts."""
        return paginated(services.list_accounts, query)

    @role_required("admin")
    @blp.arguments(AccountCreateSchema)
    @blp.response(201, AccountSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Create an account with any role."""
        return services.create_account(body["username"], body["password"], body["role"])


@blp.route("/<uuid:account_id>")
class AccountById(MethodView):
    @role_required("admin")
    @blp.arguments(AccountUpdateSchema)
    @blp.response(200, AccountSchema)
    def patch(self, body: dict[str, Any], account_id: uuid.UUID) -> Any:
        """Change an account's role, or disable / enable it."""
        return services.update_account(current_user, account_id, body)
