from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.by_category import ByCategory


T = TypeVar("T", bound="RobotRefresh")


@_attrs_define
class RobotRefresh:
    """
    Attributes:
        total (int):
        by_category (ByCategory):
        fetched_at (datetime.datetime):
    """

    total: int
    by_category: ByCategory
    fetched_at: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        total = self.total

        by_category = self.by_category.to_dict()

        fetched_at = self.fetched_at.isoformat()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "total": total,
                "by_category": by_category,
                "fetched_at": fetched_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.by_category import ByCategory  # noqa: PLC0415

        d = dict(src_dict)
        total = d.pop("total")

        by_category = ByCategory.from_dict(d.pop("by_category"))

        fetched_at = datetime.datetime.fromisoformat(d.pop("fetched_at"))

        robot_refresh = cls(
            total=total,
            by_category=by_category,
            fetched_at=fetched_at,
        )

        return robot_refresh
