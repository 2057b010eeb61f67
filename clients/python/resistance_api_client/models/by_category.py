from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ByCategory")


@_attrs_define
class ByCategory:
    """
    Attributes:
        flying (int):
        land (int):
    """

    flying: int
    land: int

    def to_dict(self) -> dict[str, Any]:
        flying = self.flying

        land = self.land

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "Flying": flying,
                "Land": land,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        flying = d.pop("Flying")

        land = d.pop("Land")

        by_category = cls(
            flying=flying,
            land=land,
        )

        return by_category
