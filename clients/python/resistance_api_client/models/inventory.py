from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from uuid import UUID

from attrs import define as _attrs_define

T = TypeVar("T", bound="Inventory")


@_attrs_define
class Inventory:
    """
    Attributes:
        survivor_id (UUID):
        water (int):
        food (int):
        medication (int):
        ammunition (int):
        points (int):
    """

    survivor_id: UUID
    water: int
    food: int
    medication: int
    ammunition: int
    points: int

    def to_dict(self) -> dict[str, Any]:
        survivor_id = str(self.survivor_id)

        water = self.water

        food = self.food

        medication = self.medication

        ammunition = self.ammunition

        points = self.points

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "survivor_id": survivor_id,
                "water": water,
                "food": food,
                "medication": medication,
                "ammunition": ammunition,
                "points": points,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        survivor_id = UUID(d.pop("survivor_id"))

        water = d.pop("water")

        food = d.pop("food")

        medication = d.pop("medication")

        ammunition = d.pop("ammunition")

        points = d.pop("points")

        inventory = cls(
            survivor_id=survivor_id,
            water=water,
            food=food,
            medication=medication,
            ammunition=ammunition,
            points=points,
        )

        return inventory
