"""The chaos run's invariants (bench/chaos/invariants.py) count what they should, on made-up
facts: a clean run counts nothing against it, and each kind of damage lands in its counter."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from bench.chaos.invariants import Facts, Tally, check
from bench.chaos.workload import Journal, KeyRecord

USER = "user_chaosu0"
GEN, MODEL, TRAINING = "g-1", "m-1", "t-1"
SESSION = "cs_test_1"


def key(op: str, name: str, status: int | None, resource: str | None = None) -> KeyRecord:
    return KeyRecord(USER, op, name, "/v1/x", None, status=status, resource_id=resource)


def generation(gen_id: str, key_name: str, images: int = 2, status: str = "succeeded") -> tuple:
    prompt = f"a portrait of me on a beach at dawn, take {key_name}"
    return (gen_id, USER, prompt, status, 2, images, None, images)


def clean() -> tuple[Facts, Journal]:
    """One user: a starter pack paid and credited (200), a model trained (150 captured), a
    generation of two images (8 captured): balance 42."""
    entries = {
        "h-t": {"hold": (1, 0, 150), "capture": (1, -150, -150)},
        "h-g": {"hold": (1, 0, 8), "capture": (1, -8, -8)},
    }
    facts = Facts(
        accounts=[(USER, 42, 0)],
        ledger_sums={USER: (42, 0)},
        ledger_minima={USER: (42, 0)},
        purchases=[(USER, SESSION, "pi_1", 200)],
        hold_entries=entries,
        holds=[
            ("h-t", USER, "training", TRAINING, "settled", 150, 1),
            ("h-g", USER, "generation", GEN, "settled", 8, 2),
        ],
        generations=[generation(GEN, "generation-1")],
        models=[
            (MODEL, USER, "chaos model-1", "succeeded", TRAINING, "d.zip", "w.tar", None, False)
        ],
        photos=[("p-1", "accepted", "uploads/p-1", "photos/p-1.jpg")],
        images=[
            (GEN, "images/0.webp", "images/0.thumb.webp"),
            (GEN, "images/1.webp", "images/1.t"),
        ],
        stripe_events=[("evt_1", "checkout.session.completed", True, "credited")],
        outboxes={"billing": (0, 5)},
        inbox_rows=5,
        objects={
            "photos/p-1.jpg",
            "d.zip",
            "w.tar",
            "images/0.webp",
            "images/0.thumb.webp",
            "images/1.webp",
            "images/1.t",
        },
        queues=[
            {"name": "billing.holds", "messages_ready": 0, "messages_unacknowledged": 0},
            {"name": "billing.holds.dlq", "messages_ready": 0, "messages_unacknowledged": 0},
        ],
        sessions=[
            {
                "id": SESSION,
                "mode": "payment",
                "payment_status": "paid",
                "client_reference_id": USER,
                "metadata": {"item_id": "starter"},
            }
        ],
    )
    journal = Journal(
        keys=[
            key("model", "model-1", 202, MODEL),
            key("generation", "generation-1", 202, GEN),
        ]
    )
    return facts, journal


def violations(tallies: dict[str, Tally]) -> dict[str, dict[str, int]]:
    return {
        name: {c: n for c, n in t.counts.items() if c != "ok" and n}
        for name, t in tallies.items()
        if t.violations
    }


@pytest.fixture
def run() -> Iterator[tuple[Facts, Journal]]:
    yield clean()


def test_a_clean_run_counts_nothing_against_it(run: tuple[Facts, Journal]) -> None:
    tallies = check(*run)
    assert violations(tallies) == {}
    assert tallies["one_generation_per_key"].counts["ok"] == 1
    assert tallies["stored_objects_referenced"].counts["ok"] == 7


@pytest.mark.parametrize(
    ("answered", "made_for", "counter"),
    [
        pytest.param(None, "generation-1", {"duplicated": 1}, id="a retry that ran again"),
        pytest.param(
            key("generation", "generation-2", 202, "g-9"),
            None,
            {"lost": 1},
            id="an acknowledged generation that does not exist",
        ),
        pytest.param(
            key("generation", "generation-2", 409),
            "generation-2",
            {"unexpected": 1},
            id="a refused request that made a generation",
        ),
        pytest.param(None, "generation-77", {"unexpected": 1}, id="one no request explains"),
    ],
)
def test_a_generation_per_key_counts_duplicated_lost_and_unexpected(
    run: tuple[Facts, Journal],
    answered: KeyRecord | None,
    made_for: str | None,
    counter: dict[str, int],
) -> None:
    """``answered``: a request the journal adds; ``made_for``: the key of a (failed)
    generation the facts add."""
    facts, journal = run
    if answered is not None:
        journal.keys.append(answered)
    if made_for is not None:
        facts.generations.append(generation("g-2", made_for, images=0, status="failed"))
    assert violations(check(facts, journal)) == {"one_generation_per_key": counter}


def test_an_unanswered_request_may_have_made_one_generation_not_two(
    run: tuple[Facts, Journal],
) -> None:
    facts, journal = run
    journal.keys.append(key("generation", "generation-2", None))
    facts.generations.append(generation("g-2", "generation-2", images=0, status="failed"))
    assert "one_generation_per_key" not in violations(check(facts, journal))
    facts.generations.append(generation("g-3", "generation-2", images=0, status="failed"))
    assert violations(check(facts, journal))["one_generation_per_key"] == {"duplicated": 1}


@pytest.mark.parametrize(
    ("capture", "counter"),
    [((1, -4, -4), {"lost": 1}), ((2, -16, -8), {"duplicated": 1})],
)
def test_images_captured_short_or_twice(
    run: tuple[Facts, Journal], capture: tuple[int, int, int], counter: dict[str, int]
) -> None:
    facts, journal = run
    facts.hold_entries["h-g"]["capture"] = capture
    assert violations(check(facts, journal))["delivered_images_captured_once"] == counter


def test_a_hold_left_open_is_not_released(run: tuple[Facts, Journal]) -> None:
    facts, journal = run
    facts.holds[1] = ("h-g", USER, "generation", GEN, "open", 8, 2)
    facts.hold_entries["h-g"] = {"hold": (1, 0, 8)}
    found = violations(check(facts, journal))
    assert found["undelivered_released"] == {"lost": 1}
    assert found["delivered_images_captured_once"] == {"lost": 1}


def test_a_late_capture_after_expiry_pays_and_releases_in_full(
    run: tuple[Facts, Journal],
) -> None:
    facts, journal = run
    facts.hold_entries["h-g"] = {
        "hold": (1, 0, 8),
        "release": (1, 0, -8),  # expired: everything released
        "capture": (1, -8, 0),  # then the outcome: captured from the available credits
    }
    assert violations(check(facts, journal)) == {}


def test_a_paid_checkout_never_or_twice_credited(run: tuple[Facts, Journal]) -> None:
    facts, journal = run
    lost = dataclasses.replace(facts, purchases=[])
    assert violations(check(lost, journal))["paid_checkout_credited_once"] == {"lost": 1}
    twice = dataclasses.replace(facts, purchases=facts.purchases * 2)
    assert violations(check(twice, journal))["paid_checkout_credited_once"] == {"duplicated": 1}


def test_objects_no_row_names_and_rows_naming_no_object(run: tuple[Facts, Journal]) -> None:
    facts, journal = run
    facts.objects.add("images/orphan.webp")
    facts.objects.discard("images/1.webp")
    assert violations(check(facts, journal))["stored_objects_referenced"] == {
        "lost": 1,
        "unexpected": 1,
    }


def test_a_balance_apart_from_its_ledger_and_dead_letters(run: tuple[Facts, Journal]) -> None:
    facts, journal = run
    facts.accounts[0] = (USER, 50, 0)
    facts.queues[1]["messages_ready"] = 3
    found = violations(check(facts, journal))
    assert found["balance_equals_ledger"] == {"unexpected": 1}
    assert found["dlq_empty"] == {"lost": 1}
