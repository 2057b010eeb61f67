from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.gender import Gender
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.inventory_in import InventoryIn
    from ..models.location import Location


T = TypeVar("T", bound="SurvivorCreate")


@_attrs_define
class SurvivorCreate:
    """
    Attributes:
        name (str):
        age (int):
        gender (Gender):
        location (Location):
        inventory (InventoryIn | Unset):
    """

    name: str
    age: int
    gender: Gender
    location: Location
    inventory: InventoryIn | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        age = self.age

        gender = self.gender.value

        location = self.location.to_dict()

        inventory: dict[str, Any] | Unset = UNSET
        if not isinstance(self.inventory, Unset):
            inventory = self.inventory.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "age": age,
                "gender": gender,
                "location": location,
            }
        )
        if inventory is not UNSET:
            field_dict["inventory"] = inventory

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.inventory_in import InventoryIn  # noqa: PLC0415
        from ..models.location import Location  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        age = d.pop("age")

        gender = Gender(d.pop("gender"))

        location = Location.from_dict(d.pop("location"))

        _inventory = d.pop("inventory", UNSET)
        inventory: InventoryIn | Unset
        if isinstance(_inventory, Unset):
            inventory = UNSET
        else:
            inventory = InventoryIn.from_dict(_inventory)

        survivor_create = cls(
            name=name,
            age=age,
            gender=gender,
            location=location,
            inventory=inventory,
        )

        return survivor_create
