"""The one rule by which a back service's message becomes a REST body."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from visiona.billing.v1 import billing_pb2
from visiona.gateway.schemas import Failure, from_message
from visiona.gateway.schemas.billing import CheckoutSession, LedgerEntry
from visiona.gateway.schemas.generation import Generation
from visiona.gateway.schemas.training import ModelPage, PhotoUpload
from visiona.generation.v1 import generation_pb2
from visiona.training.v1 import training_pb2


def test_fields_of_the_same_name_are_copied_and_given_ones_win() -> None:
    entry = from_message(
        LedgerEntry,
        billing_pb2.LedgerEntry(
            id=7, kind=billing_pb2.LEDGER_ENTRY_KIND_PURCHASE, delta_balance=5, reference="cs_1"
        ),
        reason="given",
    )
    assert (entry.id, entry.kind, entry.delta_balance, entry.reference) == (
        7,
        "purchase",
        5,
        "cs_1",
    )
    assert entry.reason == "given"


def test_an_empty_scalar_is_none_only_where_the_body_allows_none() -> None:
    entry = from_message(
        LedgerEntry, billing_pb2.LedgerEntry(kind=billing_pb2.LEDGER_ENTRY_KIND_HOLD)
    )
    assert entry.reference is None and entry.reason is None
    assert entry.delta_balance == 0


def test_timestamps_are_aware_utc_and_none_when_unset_where_allowed() -> None:
    session = billing_pb2.CreateCheckoutSessionResponse(session_id="s", url="u")
    assert from_message(CheckoutSession, session).expires_at is None
    session.expires_at.FromSeconds(60)
    assert from_message(CheckoutSession, session).expires_at == datetime(
        1970, 1, 1, 0, 1, tzinfo=UTC
    )


def test_repeated_fields_are_lists_and_maps_dicts() -> None:
    upload = training_pb2.PhotoUpload(photo_id="p", url="u", fields={"key": "v"}, max_bytes=1)
    body = from_message(PhotoUpload, upload)
    assert body.fields == {"key": "v"} and type(body.fields) is dict


def test_a_field_with_presence_is_none_only_when_unset() -> None:
    generation = generation_pb2.Generation(id="g", status=generation_pb2.GENERATION_STATUS_QUEUED)
    assert Generation.from_proto(generation).seed is None
    generation.seed = 0
    assert Generation.from_proto(generation).seed == 0


def test_a_failure_is_there_only_with_a_reason() -> None:
    assert Failure.of(training_pb2.Model()) is None
    failed = training_pb2.Model(failure_reason="provider_failed", failure_message="")
    assert Failure.of(failed) == Failure(reason="provider_failed", message=None)


def test_a_page_maps_its_items_and_its_next_cursor() -> None:
    last = ModelPage.from_proto(
        training_pb2.ListModelsResponse(
            models=[training_pb2.Model(id="m", status=training_pb2.MODEL_STATUS_QUEUED)]
        )
    )
    assert [(m.id, m.status) for m in last.models] == [("m", "queued")]
    assert last.next_cursor is None
    more = training_pb2.ListModelsResponse(next_page_token="c")
    assert ModelPage.from_proto(more).next_cursor == "c"


def test_an_enum_is_its_states_string_and_an_unspecified_one_is_refused() -> None:
    queued = generation_pb2.Generation(id="g", status=generation_pb2.GENERATION_STATUS_QUEUED)
    assert Generation.from_proto(queued).status == "queued"
    unspecified = generation_pb2.Generation(id="g")
    with pytest.raises(ValueError, match="has no state 0"):
        Generation.from_proto(unspecified)
