from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from uuid import UUID

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="InfectionReportIn")


@_attrs_define
class InfectionReportIn:
    """
    Attributes:
        reporter_id (UUID | Unset): Admins only: the reporting survivor.
    """

    reporter_id: UUID | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        reporter_id: str | Unset = UNSET
        if not isinstance(self.reporter_id, Unset):
            reporter_id = str(self.reporter_id)

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if reporter_id is not UNSET:
            field_dict["reporter_id"] = reporter_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        _reporter_id = d.pop("reporter_id", UNSET)
        reporter_id: UUID | Unset
        if isinstance(_reporter_id, Unset):
            reporter_id = UNSET
        else:
            reporter_id = UUID(_reporter_id)

        infection_report_in = cls(
            reporter_id=reporter_id,
        )

        return infection_report_in
