from enum import StrEnum


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    NON_BINARY = "non-binary"
    UNSPECIFIED = "unspecified"

    def __str__(self) -> str:
        return str(self.value)
