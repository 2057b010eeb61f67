from enum import StrEnum


class ReadyChecksDatabase(StrEnum):
    OK = "ok"

    def __str__(self) -> str:
        return str(self.value)
