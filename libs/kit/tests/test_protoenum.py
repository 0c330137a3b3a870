"""A proto enum's states are its value names without the prefix, lowercased; anything else
fails loudly instead of becoming a default."""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2

from visiona.kit import protoenum
from visiona.training.v1 import training_pb2


def test_a_state_is_the_value_name_without_the_prefix_lowercased() -> None:
    assert protoenum.strings(training_pb2.PhotoStatus) == (
        "uploading",
        "accepted",
        "accepted_with_warnings",
        "rejected",
    )


def test_a_state_goes_to_its_proto_value_and_back() -> None:
    number = protoenum.to_proto(training_pb2.PhotoStatus, "accepted_with_warnings")
    assert number == training_pb2.PHOTO_STATUS_ACCEPTED_WITH_WARNINGS
    assert protoenum.to_string(training_pb2.PhotoStatus, number) == "accepted_with_warnings"


@pytest.mark.parametrize("value", ["unspecified", "ACCEPTED", "PHOTO_STATUS_ACCEPTED", "", "gone"])
def test_a_string_that_is_no_state_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"visiona\.training\.v1\.PhotoStatus has no state"):
        protoenum.to_proto(training_pb2.PhotoStatus, value)


@pytest.mark.parametrize("number", [training_pb2.PHOTO_STATUS_UNSPECIFIED, 99])
def test_the_unspecified_zero_and_unknown_numbers_are_refused(number: int) -> None:
    with pytest.raises(ValueError, match="has no state"):
        protoenum.to_string(training_pb2.PhotoStatus, number)


def test_an_enum_without_an_unspecified_zero_is_not_mapped() -> None:
    with pytest.raises(TypeError, match="_UNSPECIFIED"):
        protoenum.strings(health_pb2.HealthCheckResponse.ServingStatus)
