from enum import StrEnum


class RobotDataSource(StrEnum):
    CACHE = "cache"
    SNAPSHOT = "snapshot"
    UPSTREAM = "upstream"

    def __str__(self) -> str:
        return str(self.value)
