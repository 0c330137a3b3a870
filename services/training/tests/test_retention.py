"""Retention settings (the sweep itself runs end to end in tests/e2e/test_retention.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from visiona.training.config import TrainingSettings
from visiona.training.jobs.retention import ENDED, IN_PROGRESS


def test_photos_and_datasets_are_kept_30_days_and_swept_hourly_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRAINING_PHOTO_RETENTION_S", raising=False)
    monkeypatch.delenv("TRAINING_RETENTION_SWEEP_INTERVAL_S", raising=False)
    settings = TrainingSettings()
    assert settings.photo_retention_s == 30 * 24 * 3600
    assert settings.retention_sweep_interval_s == 3600


def test_the_retention_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINING_PHOTO_RETENTION_S", "86400")
    monkeypatch.setenv("TRAINING_RETENTION_SWEEP_INTERVAL_S", "60")
    settings = TrainingSettings()
    assert (settings.photo_retention_s, settings.retention_sweep_interval_s) == (86400, 60)


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_retention_that_would_delete_at_once_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TRAINING_PHOTO_RETENTION_S", value)
    with pytest.raises(ValidationError):
        TrainingSettings()


def test_every_state_before_the_end_holds_photos_back() -> None:
    assert set(IN_PROGRESS) == {"awaiting_credits", "preparing", "queued", "training"}
    assert set(ENDED) == {"succeeded", "failed", "canceled", "unavailable"}
