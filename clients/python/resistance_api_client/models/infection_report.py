from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from uuid import UUID

from attrs import define as _attrs_define

T = TypeVar("T", bound="InfectionReport")


@_attrs_define
class InfectionReport:
    """
    Attributes:
        survivor_id (UUID):
        reporter_id (UUID):
        infection_reports (int):
        infected (bool):
    """

    survivor_id: UUID
    reporter_id: UUID
    infection_reports: int
    infected: bool

    def to_dict(self) -> dict[str, Any]:
        survivor_id = str(self.survivor_id)

        reporter_id = str(self.reporter_id)

        infection_reports = self.infection_reports

        infected = self.infected

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "survivor_id": survivor_id,
                "reporter_id": reporter_id,
                "infection_reports": infection_reports,
                "infected": infected,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        survivor_id = UUID(d.pop("survivor_id"))

        reporter_id = UUID(d.pop("reporter_id"))

        infection_reports = d.pop("infection_reports")

        infected = d.pop("infected")

        infection_report = cls(
            survivor_id=survivor_id,
            reporter_id=reporter_id,
            infection_reports=infection_reports,
            infected=infected,
        )

        return infection_report
