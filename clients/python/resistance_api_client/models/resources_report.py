from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.averages import Averages


T = TypeVar("T", bound="ResourcesReport")


@_attrs_define
class ResourcesReport:
    """
    Attributes:
        average_per_survivor (Averages):
        points_lost (int):
    """

    average_per_survivor: Averages
    points_lost: int

    def to_dict(self) -> dict[str, Any]:
        average_per_survivor = self.average_per_survivor.to_dict()

        points_lost = self.points_lost

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "average_per_survivor": average_per_survivor,
                "points_lost": points_lost,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.averages import Averages  # noqa: PLC0415

        d = dict(src_dict)
        average_per_survivor = Averages.from_dict(d.pop("average_per_survivor"))

        points_lost = d.pop("points_lost")

        resources_report = cls(
            average_per_survivor=average_per_survivor,
            points_lost=points_lost,
        )

        return resources_report
