from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from attrs import define as _attrs_define

from ..models.trade_status import TradeStatus

if TYPE_CHECKING:
    from ..models.trade_items import TradeItems


T = TypeVar("T", bound="Trade")


@_attrs_define
class Trade:
    """
    Attributes:
        id (UUID):
        proposer_id (UUID):
        partner_id (UUID):
        offer (TradeItems):
        request (TradeItems):
        status (TradeStatus):
        created_at (datetime.datetime):
        updated_at (datetime.datetime):
    """

    id: UUID
    proposer_id: UUID
    partner_id: UUID
    offer: TradeItems
    request: TradeItems
    status: TradeStatus
    created_at: datetime.datetime
    updated_at: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        id = str(self.id)

        proposer_id = str(self.proposer_id)

        partner_id = str(self.partner_id)

        offer = self.offer.to_dict()

        request = self.request.to_dict()

        status = self.status.value

        created_at = self.created_at.isoformat()

        updated_at = self.updated_at.isoformat()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "proposer_id": proposer_id,
                "partner_id": partner_id,
                "offer": offer,
                "request": request,
                "status": status,
                "created_at": created_at,
                "updated_at": updated_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.trade_items import TradeItems  # noqa: PLC0415

        d = dict(src_dict)
        id = UUID(d.pop("id"))

        proposer_id = UUID(d.pop("proposer_id"))

        partner_id = UUID(d.pop("partner_id"))

        offer = TradeItems.from_dict(d.pop("offer"))

        request = TradeItems.from_dict(d.pop("request"))

        status = TradeStatus(d.pop("status"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        trade = cls(
            id=id,
            proposer_id=proposer_id,
            partner_id=partner_id,
            offer=offer,
            request=request,
            status=status,
            created_at=created_at,
            updated_at=updated_at,
        )

        return trade
