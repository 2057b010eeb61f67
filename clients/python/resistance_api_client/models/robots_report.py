from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.robot_data_source import RobotDataSource

if TYPE_CHECKING:
    from ..models.by_category import ByCategory


T = TypeVar("T", bound="RobotsReport")


@_attrs_define
class RobotsReport:
    """
    Attributes:
        total (int):
        by_category (ByCategory):
        source (RobotDataSource):
        fetched_at (datetime.datetime | None): When the stored copy was fetched; null for the snapshot.
    """

    total: int
    by_category: ByCategory
    source: RobotDataSource
    fetched_at: datetime.datetime | None

    def to_dict(self) -> dict[str, Any]:
        total = self.total

        by_category = self.by_category.to_dict()

        source = self.source.value

        fetched_at: None | str
        if isinstance(self.fetched_at, datetime.datetime):
            fetched_at = self.fetched_at.isoformat()
        else:
            fetched_at = self.fetched_at

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "total": total,
                "by_category": by_category,
                "source": source,
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

        source = RobotDataSource(d.pop("source"))

        def _parse_fetched_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                fetched_at_type_0 = datetime.datetime.fromisoformat(data)

                return fetched_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        fetched_at = _parse_fetched_at(d.pop("fetched_at"))

        robots_report = cls(
            total=total,
            by_category=by_category,
            source=source,
            fetched_at=fetched_at,
        )

        return robots_report
