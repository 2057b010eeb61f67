from http import HTTPStatus
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.robot_category import RobotCategory
from ...models.robot_page import RobotPage
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    page: int | Unset = 1,
    page_size: int | Unset = 20,
    category: RobotCategory | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_request_id, Unset):
        headers["X-Request-ID"] = x_request_id

    if not isinstance(if_none_match, Unset):
        headers["If-None-Match"] = if_none_match

    params: dict[str, Any] = {}

    params["page"] = page

    params["page_size"] = page_size

    json_category: str | Unset = UNSET
    if not isinstance(category, Unset):
        json_category = category.value

    params["category"] = json_category

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/robots",
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | Problem | RobotPage | None:
    if response.status_code == 200:
        response_200 = RobotPage.from_dict(response.json())

        return response_200

    if response.status_code == 304:
        response_304 = cast(Any, None)
        return response_304

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

    if response.status_code == 414:
        response_414 = Problem.from_dict(response.json())

        return response_414

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Any | Problem | RobotPage]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    page: int | Unset = 1,
    page_size: int | Unset = 20,
    category: RobotCategory | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> Response[Any | Problem | RobotPage]:
    """List robots, optionally of one category.

     Any account. Sorted by category, then model, then serial number (code-point order).
    source says where the data came from: upstream (fetched during this request), cache
    (the stored copy) or snapshot (bundled real data, while no good copy was ever fetched);
    a stale copy is refreshed by one reader while the others serve it. Carries a strong
    ETag; a current If-None-Match is answered 304 with no body.

    Args:
        page (int | Unset):  Default: 1.
        page_size (int | Unset):  Default: 20.
        category (RobotCategory | Unset):
        x_request_id (str | Unset):
        if_none_match (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem | RobotPage]
    """

    kwargs = _get_kwargs(
        page=page,
        page_size=page_size,
        category=category,
        x_request_id=x_request_id,
        if_none_match=if_none_match,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    page: int | Unset = 1,
    page_size: int | Unset = 20,
    category: RobotCategory | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> Any | Problem | RobotPage | None:
    """List robots, optionally of one category.

     Any account. Sorted by category, then model, then serial number (code-point order).
    source says where the data came from: upstream (fetched during this request), cache
    (the stored copy) or snapshot (bundled real data, while no good copy was ever fetched);
    a stale copy is refreshed by one reader while the others serve it. Carries a strong
    ETag; a current If-None-Match is answered 304 with no body.

    Args:
        page (int | Unset):  Default: 1.
        page_size (int | Unset):  Default: 20.
        category (RobotCategory | Unset):
        x_request_id (str | Unset):
        if_none_match (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem | RobotPage
    """

    return sync_detailed(
        client=client,
        page=page,
        page_size=page_size,
        category=category,
        x_request_id=x_request_id,
        if_none_match=if_none_match,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    page: int | Unset = 1,
    page_size: int | Unset = 20,
    category: RobotCategory | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> Response[Any | Problem | RobotPage]:
    """List robots, optionally of one category.

     Any account. Sorted by category, then model, then serial number (code-point order).
    source says where the data came from: upstream (fetched during this request), cache
    (the stored copy) or snapshot (bundled real data, while no good copy was ever fetched);
    a stale copy is refreshed by one reader while the others serve it. Carries a strong
    ETag; a current If-None-Match is answered 304 with no body.

    Args:
        page (int | Unset):  Default: 1.
        page_size (int | Unset):  Default: 20.
        category (RobotCategory | Unset):
        x_request_id (str | Unset):
        if_none_match (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem | RobotPage]
    """

    kwargs = _get_kwargs(
        page=page,
        page_size=page_size,
        category=category,
        x_request_id=x_request_id,
        if_none_match=if_none_match,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    page: int | Unset = 1,
    page_size: int | Unset = 20,
    category: RobotCategory | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> Any | Problem | RobotPage | None:
    """List robots, optionally of one category.

     Any account. Sorted by category, then model, then serial number (code-point order).
    source says where the data came from: upstream (fetched during this request), cache
    (the stored copy) or snapshot (bundled real data, while no good copy was ever fetched);
    a stale copy is refreshed by one reader while the others serve it. Carries a strong
    ETag; a current If-None-Match is answered 304 with no body.

    Args:
        page (int | Unset):  Default: 1.
        page_size (int | Unset):  Default: 20.
        category (RobotCategory | Unset):
        x_request_id (str | Unset):
        if_none_match (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem | RobotPage
    """

    return (
        await asyncio_detailed(
            client=client,
            page=page,
            page_size=page_size,
            category=category,
            x_request_id=x_request_id,
            if_none_match=if_none_match,
        )
    ).parsed
