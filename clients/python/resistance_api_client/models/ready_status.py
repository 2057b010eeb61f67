from enum import StrEnum


class ReadyStatus(StrEnum):
    OK = "ok"

    def __str__(self) -> str:
        return str(self.value)
