from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.trade_items import TradeItems


T = TypeVar("T", bound="TradeCreate")


@_attrs_define
class TradeCreate:
    """
    Attributes:
        partner_id (UUID):
        offer (TradeItems):
        request (TradeItems):
    """

    partner_id: UUID
    offer: TradeItems
    request: TradeItems

    def to_dict(self) -> dict[str, Any]:
        partner_id = str(self.partner_id)

        offer = self.offer.to_dict()

        request = self.request.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "partner_id": partner_id,
                "offer": offer,
                "request": request,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.trade_items import TradeItems  # noqa: PLC0415

        d = dict(src_dict)
        partner_id = UUID(d.pop("partner_id"))

        offer = TradeItems.from_dict(d.pop("offer"))

        request = TradeItems.from_dict(d.pop("request"))

        trade_create = cls(
            partner_id=partner_id,
            offer=offer,
            request=request,
        )

        return trade_create
