"""The provider emulators' webhook retry schedules come from the environment, and a stack
configuration sets them for all three at once (fault tests pace the retries)."""

from __future__ import annotations

from pathlib import Path

import pytest

from visiona.emulators import replicate, stripe
from visiona.emulators.clerk import users_from_env
from visiona.emulators.stack import StackConfig, processes

NAMES = (
    "REPLICATE_EMULATOR_RETRY_DELAYS_S",
    "STRIPE_EMULATOR_RETRY_DELAYS_S",
    "CLERK_WEBHOOK_RETRY_DELAYS_S",
)


def test_each_emulator_reads_its_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.setenv(name, "0.1, 0.2,3")
    assert replicate.Settings.from_env().retry_delays_s == (0.1, 0.2, 3.0)
    assert stripe.Settings.from_env().retry_delays_s == (0.1, 0.2, 3.0)
    assert users_from_env().retry_delays_s == [0.1, 0.2, 3.0]


def test_an_unset_schedule_keeps_the_emulators_own_and_a_negative_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    assert replicate.Settings.from_env().retry_delays_s == replicate.Settings().retry_delays_s
    assert stripe.Settings.from_env().retry_delays_s == stripe.Settings().retry_delays_s
    monkeypatch.setenv("STRIPE_EMULATOR_RETRY_DELAYS_S", "1,-1")
    with pytest.raises(ValueError, match="negative"):
        stripe.Settings.from_env()


def test_a_stack_sets_the_schedule_of_every_provider_emulator(tmp_path: Path) -> None:
    names = ["gateway", "prompts", "training", "generation", "billing"]
    names += ["anthropic", "stripe", "replicate", "clerk"]
    cfg = StackConfig(
        admin_url="postgresql://postgres@127.0.0.1:5432/postgres",
        database="unused",
        amqp_url="amqp://guest:guest@127.0.0.1:5672/",
        ports={name: 10_000 + i for i, name in enumerate(names)},
        state_dir=tmp_path,
        webhook_retry_delays_s=(0.2, 0.5),
    )
    envs = {name: env for name, (_, env) in processes(cfg).items()}
    assert envs["replicate"]["REPLICATE_EMULATOR_RETRY_DELAYS_S"] == "0.2,0.5"
    assert envs["stripe"]["STRIPE_EMULATOR_RETRY_DELAYS_S"] == "0.2,0.5"
    assert envs["clerk"]["CLERK_WEBHOOK_RETRY_DELAYS_S"] == "0.2,0.5"
    default = processes(StackConfig(**{**cfg.__dict__, "webhook_retry_delays_s": None}))
    assert all(not any(n in env for n in NAMES) for _, env in default.values())
