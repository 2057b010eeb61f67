from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="Averages")


@_attrs_define
class Averages:
    """
    Attributes:
        water (float):
        food (float):
        medication (float):
        ammunition (float):
    """

    water: float
    food: float
    medication: float
    ammunition: float

    def to_dict(self) -> dict[str, Any]:
        water = self.water

        food = self.food

        medication = self.medication

        ammunition = self.ammunition

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "water": water,
                "food": food,
                "medication": medication,
                "ammunition": ammunition,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        water = d.pop("water")

        food = d.pop("food")

        medication = d.pop("medication")

        ammunition = d.pop("ammunition")

        averages = cls(
            water=water,
            food=food,
            medication=medication,
            ammunition=ammunition,
        )

        return averages
