from enum import StrEnum


class ReadyChecksRedis(StrEnum):
    DISABLED = "disabled"
    OK = "ok"

    def __str__(self) -> str:
        return str(self.value)
