from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.ready_checks_database import ReadyChecksDatabase
from ..models.ready_checks_redis import ReadyChecksRedis

T = TypeVar("T", bound="ReadyChecks")


@_attrs_define
class ReadyChecks:
    """
    Attributes:
        database (ReadyChecksDatabase):
        redis (ReadyChecksRedis):
    """

    database: ReadyChecksDatabase
    redis: ReadyChecksRedis

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
        database = ReadyChecksDatabase(d.pop("database"))

        redis = ReadyChecksRedis(d.pop("redis"))

        ready_checks = cls(
            database=database,
            redis=redis,
        )

        return ready_checks
