from enum import StrEnum


class FailedChecksRedis(StrEnum):
    DISABLED = "disabled"
    FAILED = "failed"
    OK = "ok"

    def __str__(self) -> str:
        return str(self.value)
