"""One way to answer a page: the envelope, an RFC 8288 Link header, and keyset cursors.

Every list is in (created_at, id) order, which an index serves. A page is found one of three ways:

- `after` (the cursor a rel="next" link carries: the last item of the page before): keyset,
  WHERE (created_at, id) > cursor ORDER BY created_at, id LIMIT n — the same few index steps
  at any depth, and nothing skipped or repeated while the list grows;
- `before` (a rel="prev" link: the first item of the page after): the n rows just before it
  (with `after` as well: the rows between the two, from `after` on);
- `page` alone (a direct jump): an OFFSET walked over the index only, and only the page's rows
  fetched from the table (a deferred join). When the list's size is known in SQL without
  counting (the survivor totals), a page in the back half is walked from the end instead.

`page` is still what the body and the links show; with a cursor it is the number the link gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, select, tuple_

from api.arguments import canonical_url
from api.extensions import db
from api.schemas import Position, encode_cursor


@dataclass(frozen=True)
class Window:
    """Which page a client asked for: its number and size, and a cursor from a link, if any."""

    page: int
    page_size: int
    after: Position | None = None
    before: Position | None = None

    @classmethod
    def of(cls, query: dict[str, Any]) -> Window:
        """The window a validated page query names."""
        return cls(query["page"], query["page_size"], query.get("after"), query.get("before"))


def _clamped(value: ColumnElement[int], high: int | None = None) -> ColumnElement[int]:
    """value, in SQL, never below 0 (nor above high): a race can move a counter past the plan."""
    if high is None:
        return case((value < 0, 0), else_=value)
    return case((value < 0, 0), (value > high, high), else_=value)


def page_of(
    model: Any,
    where: Sequence[ColumnElement[bool]],
    window: Window,
    size: ColumnElement[int] | None = None,
) -> tuple[list[Any], int]:
    """One page of model's rows matching `where`, oldest first, and how many match in all.

    `size`, when given, is that count as a scalar subquery that reads no rows of `model` (a
    maintained counter): it stands in for count(*), and lets a deep page be walked from the end
    in one statement that sees the same count as the rows it pages through.
    """
    if size is None:
        total = db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    else:
        total = db.session.scalar(select(size)) or 0
    order = (model.created_at, model.id)
    backwards = [column.desc() for column in order]
    key = tuple_(*order)
    limit = window.page_size
    bounds = []
    if window.after is not None:
        bounds.append(key > _position(model, window.after))
    if window.before is not None:
        bounds.append(key < _position(model, window.before))
    if window.after is None and bounds:  # before alone: the rows just before it, in order
        statement = select(model).where(*where, *bounds).order_by(*backwards).limit(limit)
        return list(db.session.scalars(statement))[::-1], total
    if bounds:
        statement = select(model).where(*where, *bounds).order_by(*order).limit(limit)
        return list(db.session.scalars(statement)), total
    skip = (window.page - 1) * limit
    if size is not None and skip < total and max(total - skip - limit, 0) < skip:
        # Nearer the end: walk back past the rows after the page, then take the page's own rows
        # (fewer than `limit` on the last page), both counted from the same counter as `total`.
        walked = (
            select(model.id)
            .where(*where)
            .order_by(*backwards)
            .limit(_clamped(size - skip, limit))
            .offset(_clamped(size - skip - limit))
            .subquery()
        )
        # A constant LIMIT around it: the planner cannot read one computed in SQL, guesses a tenth
        # of the table, and would hash-join a full scan to fetch what is at most `limit` rows.
        keys = select(walked.c.id).limit(limit)
    else:
        keys = select(model.id).where(*where).order_by(*order).limit(limit).offset(skip)
    found = keys.subquery()
    statement = select(model).join(found, model.id == found.c.id).order_by(*order)
    return list(db.session.scalars(statement)), total


def _position(model: Any, mark: Position) -> ColumnElement[Any]:
    """A cursor's (created_at, id) as bound values of the model's own column types."""
    return tuple_(
        literal(mark.created_at, model.created_at.type),
        literal(mark.id, model.id.type),
    )


def page_response(window: Window, items: Sequence[Any], total: int) -> Any:
    """The page a list route answers, for @blp.response: the envelope, and a Link to the pages
    around it (with cursors from this page's first and last items)."""
    body = {"items": items, "page": window.page, "page_size": window.page_size, "total": total}
    after = before = None
    if items:
        after = encode_cursor(items[-1].created_at, items[-1].id)
        before = encode_cursor(items[0].created_at, items[0].id)
    link = link_header(window.page, window.page_size, total, after=after, before=before)
    return (body, {"Link": link}) if link else body


def link_header(
    page: int, page_size: int, total: int, after: str | None = None, before: str | None = None
) -> str | None:
    """RFC 8288 Link with rel="next"/"prev" where those pages exist, the rest of the query kept.

    The targets are relative references (RFC 8288 §3.1 allows them) built by the router from
    the validated query alone: no Host, X-Forwarded-* or unaccepted parameter can reach a link,
    so a body cached once is right for every client. `after` (the cursor of this page's last
    item) goes on the next link and `before` (its first) on the previous one, so a client walking
    the links is served by keyset at any depth; page 1 needs no cursor.
    """
    links = []
    last_page = max(1, -(-total // page_size))
    for rel, target, cursor in (("prev", page - 1, before), ("next", page + 1, after)):
        if 1 <= target <= last_page:
            params: dict[str, Any] = {"page": target, "page_size": page_size}
            if cursor is not None and target > 1:
                params["after" if rel == "next" else "before"] = cursor
            url = canonical_url(omit=("page", "page_size", "after", "before"), **params)
            links.append(f'<{url}>; rel="{rel}"')
    return ", ".join(links) or None
