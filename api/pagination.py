"""One way to answer a page: the envelope plus an RFC 8288 Link header."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from api.schemas import link_header


def paginated(fetch: Callable[..., tuple[Sequence[Any], int]], query: dict[str, Any], **filters: Any) -> Any:
    """Call fetch(page, page_size, **filters) and wrap the result for @blp.response."""
    page, page_size = query["page"], query["page_size"]
    items, total = fetch(page, page_size, **filters)
    body = {"items": items, "page": page, "page_size": page_size, "total": total}
    link = link_header(page, page_size, total)
    return (body, {"Link": link}) if link else body
