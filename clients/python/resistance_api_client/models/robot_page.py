from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.robot_data_source import RobotDataSource

if TYPE_CHECKING:
    from ..models.robot import Robot


T = TypeVar("T", bound="RobotPage")


@_attrs_define
class RobotPage:
    """
    Attributes:
        items (list[Robot]):
        page (int):
        page_size (int):
        total (int):
        source (RobotDataSource):
        fetched_at (datetime.datetime | None): When the stored copy was fetched; null for the snapshot.
    """

    items: list[Robot]
    page: int
    page_size: int
    total: int
    source: RobotDataSource
    fetched_at: datetime.datetime | None

    def to_dict(self) -> dict[str, Any]:
        items = []
        for items_item_data in self.items:
            items_item = items_item_data.to_dict()
            items.append(items_item)

        page = self.page

        page_size = self.page_size

        total = self.total

        source = self.source.value

        fetched_at: None | str
        if isinstance(self.fetched_at, datetime.datetime):
            fetched_at = self.fetched_at.isoformat()
        else:
            fetched_at = self.fetched_at

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "items": items,
                "page": page,
                "page_size": page_size,
                "total": total,
                "source": source,
                "fetched_at": fetched_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.robot import Robot  # noqa: PLC0415

        d = dict(src_dict)
        items = []
        _items = d.pop("items")
        for items_item_data in _items:
            items_item = Robot.from_dict(items_item_data)

            items.append(items_item)

        page = d.pop("page")

        page_size = d.pop("page_size")

        total = d.pop("total")

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

        robot_page = cls(
            items=items,
            page=page,
            page_size=page_size,
            total=total,
            source=source,
            fetched_at=fetched_at,
        )

        return robot_page
