from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="TradeItems")


@_attrs_define
class TradeItems:
    """
    Attributes:
        water (int | Unset):
        food (int | Unset):
        medication (int | Unset):
        ammunition (int | Unset):
    """

    water: int | Unset = UNSET
    food: int | Unset = UNSET
    medication: int | Unset = UNSET
    ammunition: int | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        water = self.water

        food = self.food

        medication = self.medication

        ammunition = self.ammunition

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if water is not UNSET:
            field_dict["water"] = water
        if food is not UNSET:
            field_dict["food"] = food
        if medication is not UNSET:
            field_dict["medication"] = medication
        if ammunition is not UNSET:
            field_dict["ammunition"] = ammunition

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        water = d.pop("water", UNSET)

        food = d.pop("food", UNSET)

        medication = d.pop("medication", UNSET)

        ammunition = d.pop("ammunition", UNSET)

        trade_items = cls(
            water=water,
            food=food,
            medication=medication,
            ammunition=ammunition,
        )

        return trade_items
