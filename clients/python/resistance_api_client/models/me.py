from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define

from ..models.role import Role

T = TypeVar("T", bound="Me")


@_attrs_define
class Me:
    """
    Attributes:
        id (UUID):
        username (str):
        role (Role):
        survivor_id (None | UUID):
    """

    id: UUID
    username: str
    role: Role
    survivor_id: None | UUID

    def to_dict(self) -> dict[str, Any]:
        id = str(self.id)

        username = self.username

        role = self.role.value

        survivor_id: None | str
        if isinstance(self.survivor_id, UUID):
            survivor_id = str(self.survivor_id)
        else:
            survivor_id = self.survivor_id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "username": username,
                "role": role,
                "survivor_id": survivor_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = UUID(d.pop("id"))

        username = d.pop("username")

        role = Role(d.pop("role"))

        def _parse_survivor_id(data: object) -> None | UUID:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                survivor_id_type_0 = UUID(data)

                return survivor_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UUID, data)

        survivor_id = _parse_survivor_id(d.pop("survivor_id"))

        me = cls(
            id=id,
            username=username,
            role=role,
            survivor_id=survivor_id,
        )

        return me
