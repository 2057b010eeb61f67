from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define

from ..models.gender import Gender

if TYPE_CHECKING:
    from ..models.location import Location


T = TypeVar("T", bound="Survivor")


@_attrs_define
class Survivor:
    """
    Attributes:
        id (UUID):
        name (str):
        age (int):
        gender (Gender):
        location (Location):
        infected (bool):
        infection_reports (int):
        account_id (None | UUID):
        created_at (datetime.datetime):
        updated_at (datetime.datetime):
    """

    id: UUID
    name: str
    age: int
    gender: Gender
    location: Location
    infected: bool
    infection_reports: int
    account_id: None | UUID
    created_at: datetime.datetime
    updated_at: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        id = str(self.id)

        name = self.name

        age = self.age

        gender = self.gender.value

        location = self.location.to_dict()

        infected = self.infected

        infection_reports = self.infection_reports

        account_id: None | str
        if isinstance(self.account_id, UUID):
            account_id = str(self.account_id)
        else:
            account_id = self.account_id

        created_at = self.created_at.isoformat()

        updated_at = self.updated_at.isoformat()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "name": name,
                "age": age,
                "gender": gender,
                "location": location,
                "infected": infected,
                "infection_reports": infection_reports,
                "account_id": account_id,
                "created_at": created_at,
                "updated_at": updated_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.location import Location  # noqa: PLC0415

        d = dict(src_dict)
        id = UUID(d.pop("id"))

        name = d.pop("name")

        age = d.pop("age")

        gender = Gender(d.pop("gender"))

        location = Location.from_dict(d.pop("location"))

        infected = d.pop("infected")

        infection_reports = d.pop("infection_reports")

        def _parse_account_id(data: object) -> None | UUID:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                account_id_type_0 = UUID(data)

                return account_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UUID, data)

        account_id = _parse_account_id(d.pop("account_id"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        survivor = cls(
            id=id,
            name=name,
            age=age,
            gender=gender,
            location=location,
            infected=infected,
            infection_reports=infection_reports,
            account_id=account_id,
            created_at=created_at,
            updated_at=updated_at,
        )

        return survivor
