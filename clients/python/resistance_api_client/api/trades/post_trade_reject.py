from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.no_body import NoBody
from ...models.problem import Problem
from ...models.trade import Trade
from ...types import UNSET, Response, Unset


def _get_kwargs(
    trade_id: UUID,
    *,
    body: NoBody | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    if not isinstance(x_request_id, Unset):
        headers["X-Request-ID"] = x_request_id

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/trades/{trade_id}/reject".format(
            trade_id=quote(str(trade_id), safe=""),
        ),
    }

    if not isinstance(body, Unset):
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Trade | None:
    if response.status_code == 200:
        response_200 = Trade.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 414:
        response_414 = Problem.from_dict(response.json())

        return response_414

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 417:
        response_417 = Problem.from_dict(response.json())

        return response_417

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 431:
        response_431 = Problem.from_dict(response.json())

        return response_431

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Trade]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    trade_id: UUID,
    *,
    client: AuthenticatedClient | Client,
    body: NoBody | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Response[Problem | Trade]:
    """Reject a pending trade.

     The partner or an admin; the proposer gets 403 and anyone else 404. A trade that is no
    longer pending is 409. Takes no body, or an empty JSON object.

    Args:
        trade_id (UUID):
        idempotency_key (str | Unset):
        x_request_id (str | Unset):
        body (NoBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Trade]
    """

    kwargs = _get_kwargs(
        trade_id=trade_id,
        body=body,
        idempotency_key=idempotency_key,
        x_request_id=x_request_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    trade_id: UUID,
    *,
    client: AuthenticatedClient | Client,
    body: NoBody | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Problem | Trade | None:
    """Reject a pending trade.

     The partner or an admin; the proposer gets 403 and anyone else 404. A trade that is no
    longer pending is 409. Takes no body, or an empty JSON object.

    Args:
        trade_id (UUID):
        idempotency_key (str | Unset):
        x_request_id (str | Unset):
        body (NoBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Trade
    """

    return sync_detailed(
        trade_id=trade_id,
        client=client,
        body=body,
        idempotency_key=idempotency_key,
        x_request_id=x_request_id,
    ).parsed


async def asyncio_detailed(
    trade_id: UUID,
    *,
    client: AuthenticatedClient | Client,
    body: NoBody | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Response[Problem | Trade]:
    """Reject a pending trade.

     The partner or an admin; the proposer gets 403 and anyone else 404. A trade that is no
    longer pending is 409. Takes no body, or an empty JSON object.

    Args:
        trade_id (UUID):
        idempotency_key (str | Unset):
        x_request_id (str | Unset):
        body (NoBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Trade]
    """

    kwargs = _get_kwargs(
        trade_id=trade_id,
        body=body,
        idempotency_key=idempotency_key,
        x_request_id=x_request_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    trade_id: UUID,
    *,
    client: AuthenticatedClient | Client,
    body: NoBody | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Problem | Trade | None:
    """Reject a pending trade.

     The partner or an admin; the proposer gets 403 and anyone else 404. A trade that is no
    longer pending is 409. Takes no body, or an empty JSON object.

    Args:
        trade_id (UUID):
        idempotency_key (str | Unset):
        x_request_id (str | Unset):
        body (NoBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Trade
    """

    return (
        await asyncio_detailed(
            trade_id=trade_id,
            client=client,
            body=body,
            idempotency_key=idempotency_key,
            x_request_id=x_request_id,
        )
    ).parsed
