from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.failed_checks import FailedChecks


T = TypeVar("T", bound="NotReadyProblem")


@_attrs_define
class NotReadyProblem:
    """
    Attributes:
        type_ (str):
        title (str):
        status (int):
        detail (str):
        checks (FailedChecks):
        instance (str | Unset): The request path.
        request_id (str | Unset): The request's X-Request-ID, as in the server's log lines.
    """

    type_: str
    title: str
    status: int
    detail: str
    checks: FailedChecks
    instance: str | Unset = UNSET
    request_id: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        type_ = self.type_

        title = self.title

        status = self.status

        detail = self.detail

        checks = self.checks.to_dict()

        instance = self.instance

        request_id = self.request_id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "type": type_,
                "title": title,
                "status": status,
                "detail": detail,
                "checks": checks,
            }
        )
        if instance is not UNSET:
            field_dict["instance"] = instance
        if request_id is not UNSET:
            field_dict["request_id"] = request_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.failed_checks import FailedChecks  # noqa: PLC0415

        d = dict(src_dict)
        type_ = d.pop("type")

        title = d.pop("title")

        status = d.pop("status")

        detail = d.pop("detail")

        checks = FailedChecks.from_dict(d.pop("checks"))

        instance = d.pop("instance", UNSET)

        request_id = d.pop("request_id", UNSET)

        not_ready_problem = cls(
            type_=type_,
            title=title,
            status=status,
            detail=detail,
            checks=checks,
            instance=instance,
            request_id=request_id,
        )

        return not_ready_problem
