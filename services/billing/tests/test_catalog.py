"""The catalogue and what settings may change of it without a catalogue file of their own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from visiona.billing.config import BillingSettings
from visiona.billing.domain.catalog import Catalog


def test_hold_lifetimes_from_settings_replace_the_catalogues_and_only_those() -> None:
    shipped = Catalog.load()
    changed = shipped.with_hold_ttls(training_s=None, generation_s=7)
    assert changed.hold_ttl_s.generation == 7
    assert changed.hold_ttl_s.training == shipped.hold_ttl_s.training
    assert changed.model_dump(exclude={"hold_ttl_s"}) == shipped.model_dump(exclude={"hold_ttl_s"})
    assert shipped.with_hold_ttls(training_s=None, generation_s=None) == shipped


def test_hold_lifetimes_are_read_from_the_environment_and_must_be_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_HOLD_TTL_TRAINING_S", "30")
    assert BillingSettings().hold_ttl_training_s == 30
    assert BillingSettings().hold_ttl_generation_s is None
    monkeypatch.setenv("BILLING_HOLD_TTL_GENERATION_S", "0")
    with pytest.raises(ValidationError):
        BillingSettings()
