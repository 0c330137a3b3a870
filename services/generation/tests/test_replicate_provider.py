"""The provider's prediction objects, and finding again a prediction whose start answer was
lost (so a launch never starts a second, paid one), among the predictions the provider lists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from visiona.generation.providers.replicate import ProviderPrediction, first_lost

VERSION = "5a1b9c"
PROMPT = "TOK on a beach"
ATTEMPT = datetime(2025, 3, 1, 12, 0, 0, 700_000, tzinfo=UTC)


def payload(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "p1",
        "status": "processing",
        "version": VERSION,
        "input": {"prompt": PROMPT, "num_outputs": 2},
        "output": None,
        "error": None,
        "created_at": "2025-03-01T12:00:01.250Z",
    }
    return data | overrides


def test_a_prediction_payload_is_read_with_its_outputs_as_urls() -> None:
    p = ProviderPrediction.from_payload(
        payload(status="succeeded", output=["https://r/0.webp", None, "https://r/1.webp"])
    )
    assert (p.id, p.status, p.version, p.prompt) == ("p1", "succeeded", VERSION, PROMPT)
    assert p.outputs == ["https://r/0.webp", "https://r/1.webp"]
    assert p.error is None


def test_a_bare_prediction_payload_has_no_outputs_prompt_or_error() -> None:
    p = ProviderPrediction.from_payload({"id": "p2", "status": "starting", "input": "odd"})
    assert (p.version, p.prompt, p.outputs, p.error, p.created_at) == (None, None, [], None, None)


def find(*listed: dict[str, Any]) -> str | None:
    predictions = (ProviderPrediction.from_payload(p) for p in listed)
    found = first_lost(predictions, version=VERSION, prompt=PROMPT, since=ATTEMPT)
    return found.id if found else None


def test_the_lost_prediction_is_found_by_version_prompt_and_time() -> None:
    assert find(payload(id="mine")) == "mine"


def test_a_prediction_for_another_version_or_prompt_is_not_ours() -> None:
    assert find(payload(version="0ther"), payload(input={"prompt": "TOK skiing"})) is None


def test_a_prediction_created_before_the_attempt_is_not_ours() -> None:
    assert find(payload(created_at="2025-03-01T11:59:59.999Z")) is None


def test_a_prediction_created_in_the_attempts_second_is_ours() -> None:
    # The provider's clock may be a little behind ours: the attempt counts from its second.
    assert find(payload(id="mine", created_at="2025-03-01T12:00:00.100Z")) == "mine"


def test_the_newest_matching_prediction_is_the_one_found() -> None:
    listed = (payload(id="newest"), payload(id="older", created_at="2025-03-01T12:00:00.900Z"))
    assert find(*listed) == "newest"
