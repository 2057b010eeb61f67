from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.infection_report import InfectionReport
from ...models.infection_report_in import InfectionReportIn
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    survivor_id: UUID,
    *,
    body: InfectionReportIn | Unset = UNSET,
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
        "url": "/api/v1/survivors/{survivor_id}/infection-reports".format(
            survivor_id=quote(str(survivor_id), safe=""),
        ),
    }

    if not isinstance(body, Unset):
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> InfectionReport | Problem | None:
    if response.status_code == 200:
        response_200 = InfectionReport.from_dict(response.json())

        return response_200

    if response.status_code == 201:
        response_201 = InfectionReport.from_dict(response.json())

        return response_201

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[InfectionReport | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    survivor_id: UUID,
    *,
    client: AuthenticatedClient | Client,
    body: InfectionReportIn | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Response[InfectionReport | Problem]:
    """Report a survivor as infected (survivors as themselves; admins name the reporter).

     A survivor account reports as its own profile, with no body; an admin names the
    reporter with reporter_id; observers get 403. The first report by a reporter is 201, a
    repeat 200 (counted once). A survivor is infected for good once INFECTION_THRESHOLD
    distinct survivors have reported them.

    Args:
        survivor_id (UUID):
        idempotency_key (str | Unset):
        x_request_id (str | Unset):
        body (InfectionReportIn | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[InfectionReport | Problem]
    """

    kwargs = _get_kwargs(
        survivor_id=survivor_id,
        body=body,
        idempotency_key=idempotency_key,
        x_request_id=x_request_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    survivor_id: UUID,
    *,
    client: AuthenticatedClient | Client,
    body: InfectionReportIn | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> InfectionReport | Problem | None:
    """Report a survivor as infected (survivors as themselves; admins name the reporter).

     A survivor account reports as its own profile, with no body; an admin names the
    reporter with reporter_id; observers get 403. The first report by a reporter is 201, a
    repeat 200 (counted once). A survivor is infected for good once INFECTION_THRESHOLD
    distinct survivors have reported them.

    Args:
        survivor_id (UUID):
        idempotency_key (str | Unset):
        x_request_id (str | Unset):
        body (InfectionReportIn | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        InfectionReport | Problem
    """

    return sync_detailed(
        survivor_id=survivor_id,
        client=client,
        body=body,
        idempotency_key=idempotency_key,
        x_request_id=x_request_id,
    ).parsed


async def asyncio_detailed(
    survivor_id: UUID,
    *,
    client: AuthenticatedClient | Client,
    body: InfectionReportIn | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> Response[InfectionReport | Problem]:
    """Report a survivor as infected (survivors as themselves; admins name the reporter).

     A survivor account reports as its own profile, with no body; an admin names the
    reporter with reporter_id; observers get 403. The first report by a reporter is 201, a
    repeat 200 (counted once). A survivor is infected for good once INFECTION_THRESHOLD
    distinct survivors have reported them.

    Args:
        survivor_id (UUID):
        idempotency_key (str | Unset):
        x_request_id (str | Unset):
        body (InfectionReportIn | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[InfectionReport | Problem]
    """

    kwargs = _get_kwargs(
        survivor_id=survivor_id,
        body=body,
        idempotency_key=idempotency_key,
        x_request_id=x_request_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    survivor_id: UUID,
    *,
    client: AuthenticatedClient | Client,
    body: InfectionReportIn | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
    x_request_id: str | Unset = UNSET,
) -> InfectionReport | Problem | None:
    """Report a survivor as infected (survivors as themselves; admins name the reporter).

     A survivor account reports as its own profile, with no body; an admin names the
    reporter with reporter_id; observers get 403. The first report by a reporter is 201, a
    repeat 200 (counted once). A survivor is infected for good once INFECTION_THRESHOLD
    distinct survivors have reported them.

    Args:
        survivor_id (UUID):
        idempotency_key (str | Unset):
        x_request_id (str | Unset):
        body (InfectionReportIn | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        InfectionReport | Problem
    """

    return (
        await asyncio_detailed(
            survivor_id=survivor_id,
            client=client,
            body=body,
            idempotency_key=idempotency_key,
            x_request_id=x_request_id,
        )
    ).parsed
