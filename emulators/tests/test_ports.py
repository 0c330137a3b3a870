"""Free ports for servers that start side by side: never one the kernel may hand to a
connection, never one handed out twice, never one another live process holds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from visiona.emulators import ports
from visiona.emulators.ports import free_port, free_port_with, reserve


@pytest.fixture
def repeating(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """``random.choice`` draws these ports first, in order: the test decides what comes up."""
    draws: list[int] = []
    choice = ports.random.choice
    monkeypatch.setattr(
        ports.random, "choice", lambda candidates: draws.pop(0) if draws else choice(candidates)
    )
    yield draws
    assert not draws, "every port the test lined up was drawn"


def test_a_port_is_outside_the_ephemeral_range_and_free() -> None:
    low, high = ports.ephemeral_range()
    for _ in range(50):
        port = free_port()
        assert not low <= port <= high
        assert ports.bindable(port)


def unreserved() -> int:
    """A free port nobody has reserved."""
    port = free_port()
    (ports.reservations_dir() / str(port)).unlink()
    return port


def test_a_port_is_never_handed_out_twice(repeating: list[int]) -> None:
    first, second = free_port(), unreserved()
    repeating.extend([first, first, second])
    assert free_port() == second


def test_a_port_something_listens_on_is_skipped(repeating: list[int]) -> None:
    taken, other = unreserved(), unreserved()
    with socket.socket() as server:
        server.bind(("127.0.0.1", taken))
        server.listen()
        repeating.extend([taken, other])
        assert free_port() == other


def test_a_port_another_live_process_holds_is_never_handed_out() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from visiona.emulators.ports import free_port\n"
            "print(*(free_port() for _ in range(300)), flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        theirs = {int(p) for p in child.stdout.readline().split()}
        assert len(theirs) == 300
        assert not any(reserve([p]) for p in theirs)
        assert theirs.isdisjoint(free_port() for _ in range(300))
    finally:
        child.communicate("")
    # Gone: what it held can be taken again.
    assert any(reserve([p]) for p in theirs)


def test_a_reservation_whose_process_is_gone_is_taken_over() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from visiona.emulators.ports import free_port; print(free_port())"],
        capture_output=True,
        text=True,
        check=True,
    )
    port = int(done.stdout)
    assert (ports.reservations_dir() / str(port)).exists()
    assert reserve([port])
    assert (ports.reservations_dir() / str(port)).read_text() == str(os.getpid())


def test_an_ephemeral_range_that_leaves_no_room_has_the_kernel_pick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (1024, 65_535))
    assert ports.candidate_range() is None
    taken = {free_port() for _ in range(20)}
    assert len(taken) == 20 and all(ports.bindable(p) for p in taken)
    assert not any(reserve([p]) for p in taken)


def test_ports_derived_from_one_are_reserved_with_it() -> None:
    offsets = [10_001, 10_002, 10_003]
    port = free_port_with(offsets)
    for p in (port, *(port + o for o in offsets)):
        assert ports.bindable(p)
        assert not reserve([p])
    candidates = ports.candidate_range()
    assert candidates is not None and port + max(offsets) < candidates.stop


def test_reserving_several_is_all_or_nothing() -> None:
    held = free_port()
    free = free_port_with([1])
    (ports.reservations_dir() / str(free + 1)).unlink()
    assert not reserve([free + 1, held])
    assert reserve([free + 1])  # the refusal above reserved nothing
