from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OBSERVER = "observer"
    SURVIVOR = "survivor"

    def __str__(self) -> str:
        return str(self.value)
