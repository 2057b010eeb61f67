from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.robot_category import RobotCategory

T = TypeVar("T", bound="Robot")


@_attrs_define
class Robot:
    """
    Attributes:
        model (str):
        serial_number (str):
        manufactured_date (datetime.datetime):
        category (RobotCategory):
    """

    model: str
    serial_number: str
    manufactured_date: datetime.datetime
    category: RobotCategory

    def to_dict(self) -> dict[str, Any]:
        model = self.model

        serial_number = self.serial_number

        manufactured_date = self.manufactured_date.isoformat()

        category = self.category.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "model": model,
                "serial_number": serial_number,
                "manufactured_date": manufactured_date,
                "category": category,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        model = d.pop("model")

        serial_number = d.pop("serial_number")

        manufactured_date = datetime.datetime.fromisoformat(d.pop("manufactured_date"))

        category = RobotCategory(d.pop("category"))

        robot = cls(
            model=model,
            serial_number=serial_number,
            manufactured_date=manufactured_date,
            category=category,
        )

        return robot
