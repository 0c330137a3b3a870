"""What a failed Replicate call means, status by status: a 4xx is not an outage.

The errors are the official SDK's own, raised from a problem+json answer over real HTTP (the
SDK has one class for every status, ``ReplicateError``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from replicate.exceptions import ReplicateError

from visiona.emulators._server import running
from visiona.emulators.ports import free_port
from visiona.kit.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from visiona.kit.replicate import Failure, ProviderError, client, wrap


@pytest.fixture(scope="module")
def replicate_url() -> Iterator[str]:
    """Answers ``POST /v1/trainings/<status>/cancel`` with that status, as Replicate words
    errors. (A POST: the SDK retries GETs on 429 and 503, and would only be slower.)"""
    app = FastAPI()

    @app.post("/v1/trainings/{status}/cancel")
    async def failing(status: int) -> JSONResponse:
        return JSONResponse(
            {"title": "failed", "detail": f"the input prompt 'me' ({status})", "status": status},
            status_code=status,
            media_type="application/problem+json",
        )

    with running(app) as url:
        yield url


async def provider_error(base_url: str, training: str) -> ProviderError:
    sdk = client("r8_test", base_url)
    with pytest.raises(Exception) as caught:
        await sdk.trainings.async_cancel(training)
    assert isinstance(caught.value, ReplicateError) or "Connect" in type(caught.value).__name__
    return wrap(caught.value)


@pytest.mark.parametrize(
    ("status", "failure", "permanent", "kind", "code"),
    [
        (400, Failure.INVALID, True, InvalidArgument, "replicate_input_refused"),
        (422, Failure.INVALID, True, InvalidArgument, "replicate_input_refused"),
        (413, Failure.INVALID, True, InvalidArgument, "replicate_input_refused"),
        (401, Failure.NOT_CONFIGURED, True, FailedPrecondition, "replicate_not_configured"),
        (402, Failure.NOT_CONFIGURED, True, FailedPrecondition, "replicate_not_configured"),
        (403, Failure.NOT_CONFIGURED, True, FailedPrecondition, "replicate_not_configured"),
        (404, Failure.GONE, True, FailedPrecondition, "replicate_object_gone"),
        (410, Failure.GONE, True, FailedPrecondition, "replicate_object_gone"),
        (409, Failure.CONFLICT, True, FailedPrecondition, "replicate_conflict"),
        (418, Failure.INVALID, True, InvalidArgument, "replicate_input_refused"),
        (429, Failure.RATE_LIMITED, False, ResourceExhausted, "replicate_rate_limited"),
        (408, Failure.UNAVAILABLE, False, Unavailable, "replicate_unavailable"),
        (500, Failure.UNAVAILABLE, False, Unavailable, "replicate_unavailable"),
        (502, Failure.UNAVAILABLE, False, Unavailable, "replicate_unavailable"),
        (503, Failure.UNAVAILABLE, False, Unavailable, "replicate_unavailable"),
    ],
)
async def test_each_status_has_a_deliberate_meaning(
    replicate_url: str,
    status: int,
    failure: Failure,
    permanent: bool,
    kind: type[DomainError],
    code: str,
) -> None:
    error = await provider_error(replicate_url, str(status))
    assert error.status == status
    assert (error.failure, error.permanent, error.gone) == (
        failure,
        permanent,
        failure is Failure.GONE,
    )
    domain = error.domain_error()
    assert type(domain) is kind and domain.code == code
    # Replicate's detail may quote the input: it stays out of what callers see.
    assert "prompt" not in domain.message


async def test_no_answer_at_all_is_an_outage() -> None:
    port = free_port()  # reserved: nothing will listen on it
    error = await provider_error(f"http://127.0.0.1:{port}", "500")
    assert error.status is None and error.failure is Failure.UNAVAILABLE and not error.permanent
    assert type(error.domain_error()) is Unavailable
