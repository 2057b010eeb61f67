from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.failed_checks_database import FailedChecksDatabase
from ..models.failed_checks_redis import FailedChecksRedis

T = TypeVar("T", bound="FailedChecks")


@_attrs_define
class FailedChecks:
    """
    Attributes:
        database (FailedChecksDatabase):
        redis (FailedChecksRedis):
    """

    database: FailedChecksDatabase
    redis: FailedChecksRedis

    def to_dict(self) -> dict[str, Any]:
        database = self.database.value

        redis = self.redis.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "database": database,
                "redis": redis,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        database = FailedChecksDatabase(d.pop("database"))

        redis = FailedChecksRedis(d.pop("redis"))

        failed_checks = cls(
            database=database,
            redis=redis,
        )

        return failed_checks
