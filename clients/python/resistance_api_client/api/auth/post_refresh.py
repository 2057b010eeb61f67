from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.no_body import NoBody
from ...models.problem import Problem
from ...models.token_pair import TokenPair
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: NoBody | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_request_id, Unset):
        headers["X-Request-ID"] = x_request_id

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/auth/refresh",
    }

    if not isinstance(body, Unset):
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | TokenPair | None:
    if response.status_code == 200:
        response_200 = TokenPair.from_dict(response.json())

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | TokenPair]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: NoBody | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Response[Problem | TokenPair]:
    """Rotate the session's token pair with its refresh token.

     Send the refresh token (not the access token, 401) as the bearer token. The used refresh
    token dies: presented again it is 401, and it means it was stolen (RFC 9700 §4.14.2):
    the whole session ends. Only the token the last refresh replaced, back within
    REFRESH_REUSE_GRACE seconds, is taken for a concurrent refresh of the same holder
    instead: 401, the session lives, exactly one new pair exists. Strict per-IP
    RATELIMIT_AUTH bucket.

    Args:
        x_request_id (str | Unset):
        body (NoBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TokenPair]
    """

    kwargs = _get_kwargs(
        body=body,
        x_request_id=x_request_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: NoBody | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Problem | TokenPair | None:
    """Rotate the session's token pair with its refresh token.

     Send the refresh token (not the access token, 401) as the bearer token. The used refresh
    token dies: presented again it is 401, and it means it was stolen (RFC 9700 §4.14.2):
    the whole session ends. Only the token the last refresh replaced, back within
    REFRESH_REUSE_GRACE seconds, is taken for a concurrent refresh of the same holder
    instead: 401, the session lives, exactly one new pair exists. Strict per-IP
    RATELIMIT_AUTH bucket.

    Args:
        x_request_id (str | Unset):
        body (NoBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TokenPair
    """

    return sync_detailed(
        client=client,
        body=body,
        x_request_id=x_request_id,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: NoBody | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Response[Problem | TokenPair]:
    """Rotate the session's token pair with its refresh token.

     Send the refresh token (not the access token, 401) as the bearer token. The used refresh
    token dies: presented again it is 401, and it means it was stolen (RFC 9700 §4.14.2):
    the whole session ends. Only the token the last refresh replaced, back within
    REFRESH_REUSE_GRACE seconds, is taken for a concurrent refresh of the same holder
    instead: 401, the session lives, exactly one new pair exists. Strict per-IP
    RATELIMIT_AUTH bucket.

    Args:
        x_request_id (str | Unset):
        body (NoBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TokenPair]
    """

    kwargs = _get_kwargs(
        body=body,
        x_request_id=x_request_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: NoBody | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Problem | TokenPair | None:
    """Rotate the session's token pair with its refresh token.

     Send the refresh token (not the access token, 401) as the bearer token. The used refresh
    token dies: presented again it is 401, and it means it was stolen (RFC 9700 §4.14.2):
    the whole session ends. Only the token the last refresh replaced, back within
    REFRESH_REUSE_GRACE seconds, is taken for a concurrent refresh of the same holder
    instead: 401, the session lives, exactly one new pair exists. Strict per-IP
    RATELIMIT_AUTH bucket.

    Args:
        x_request_id (str | Unset):
        body (NoBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TokenPair
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            x_request_id=x_request_id,
        )
    ).parsed
