from enum import StrEnum


class RobotCategory(StrEnum):
    FLYING = "Flying"
    LAND = "Land"

    def __str__(self) -> str:
        return str(self.value)
