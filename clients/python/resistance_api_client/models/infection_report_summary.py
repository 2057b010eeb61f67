from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="InfectionReportSummary")


@_attrs_define
class InfectionReportSummary:
    """
    Attributes:
        total (int):
        infected (int):
        non_infected (int):
        infected_percentage (float):
        non_infected_percentage (float):
    """

    total: int
    infected: int
    non_infected: int
    infected_percentage: float
    non_infected_percentage: float

    def to_dict(self) -> dict[str, Any]:
        total = self.total

        infected = self.infected

        non_infected = self.non_infected

        infected_percentage = self.infected_percentage

        non_infected_percentage = self.non_infected_percentage

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "total": total,
                "infected": infected,
                "non_infected": non_infected,
                "infected_percentage": infected_percentage,
                "non_infected_percentage": non_infected_percentage,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        total = d.pop("total")

        infected = d.pop("infected")

        non_infected = d.pop("non_infected")

        infected_percentage = d.pop("infected_percentage")

        non_infected_percentage = d.pop("non_infected_percentage")

        infection_report_summary = cls(
            total=total,
            infected=infected,
            non_infected=non_infected,
            infected_percentage=infected_percentage,
            non_infected_percentage=non_infected_percentage,
        )

        return infection_report_summary
