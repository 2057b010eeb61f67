"""One way to answer a page: the envelope plus an RFC 8288 Link header."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select

from api.extensions import db
from api.schemas import link_header


def page_of(
    model: Any, where: Sequence[ColumnElement[bool]], page: int, page_size: int
) -> tuple[list[Any], int]:
    """One page of model's rows matching `where`, oldest first (created_at, id: a stable order
    an index serves), and the total count."""
    total = db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    rows = db.session.scalars(
        select(model)
        .where(*where)
        .order_by(model.created_at, model.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return list(rows), total


def paginated(fetch: Callable[..., tuple[Sequence[Any], int]], query: dict[str, Any], **filters: Any) -> Any:
    """Call fetch(page, page_size, **filters) and wrap the result for @blp.response."""
    page, page_size = query["page"], query["page_size"]
    items, total = fetch(page, page_size, **filters)
    body = {"items": items, "page": page, "page_size": page_size, "total": total}
    link = link_header(page, page_size, total)
    return (body, {"Link": link}) if link else body
