"""Ports for the processes the tests, benchmarks and stacks start.

``bind(("127.0.0.1", 0))`` then ``close()`` is the usual way to find a free port, and it is
not safe when many stacks start side by side:

- the kernel hands the port out of its ephemeral range, where every outgoing connection draws
  its own port, so a connection can take it between the choice and the server's start;
- it remembers nothing: on Linux the same port comes back about once in a thousand calls
  within ten, so two servers of one stack can be given one port;
- another process (a second pytest session, a benchmark) can be handed the same port while
  the first one's server is still starting, or while a test has stopped it to restart it.

Here a port comes from below the ephemeral range, and is reserved until the process that took
it exits: a file named after it, holding that process's id, in a directory every process on
the machine shares. A reservation whose process is gone is taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

# Below this are the ports people configure by hand (make up's 8000, 8101…, 9461…).
LOWEST = 10_000
# Fewer free ports than this below the ephemeral range and we use the range above it.
ENOUGH = 4_000
# The ephemeral range when /proc does not say.
DEFAULT_EPHEMERAL = (32_768, 60_999)


def reservations_dir() -> Path:
    """Shared by every process of this machine that uses it (one per user)."""
    path = Path(tempfile.gettempdir()) / f"visiona-ports-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL


def candidate_range() -> range | None:
    """Where free ports are drawn from: outside the ephemeral range, or None when it leaves
    too few (then the kernel picks, and only the reservation protects the port)."""
    low, high = ephemeral_range()
    if low - LOWEST >= ENOUGH:
        return range(LOWEST, low)
    if 65_535 - high >= ENOUGH:
        return range(high + 1, 65_536)
    return None


def _kernels_choice() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bindable(port: int) -> bool:
    """Nothing listens on the port (or holds it in any state that would stop a server)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> int | None:
    try:
        return int(path.read_text() or "0") or None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One process at a time looks at and changes the reservations."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def reserve(ports: Sequence[int]) -> bool:
    """Reserve every one of ``ports`` for this process, or none of them: False when one is
    reserved by a live process or cannot be bound."""
    directory = reservations_dir()
    me = os.getpid()
    with _locked(directory):
        for port in ports:
            holder = _holder(directory / str(port))
            if holder is not None and holder != me and _alive(holder):
                return False
            if holder == me or not bindable(port):
                return False
        for port in ports:
            (directory / str(port)).write_text(str(me))
    return True


def free_port() -> int:
    """A port nothing listens on, that no other caller of this module has been given by a
    process still running, and that this process has not been given before."""
    candidates = candidate_range()
    for _ in range(10_000):
        port = _kernels_choice() if candidates is None else random.choice(candidates)
        if reserve([port]):
            return port
    raise RuntimeError(f"no free port in {candidates or 'the ephemeral range'}")


def free_port_with(offsets: Sequence[int]) -> int:
    """A port ``p`` such that ``p`` and ``p + offset`` for each of ``offsets`` are all free, now
    reserved for this process (for a server that derives its other ports from one)."""
    candidates = candidate_range() or range(LOWEST, 65_536)
    top = max(offsets, default=0)
    usable = range(candidates.start, candidates.stop - top)
    for _ in range(10_000):
        port = random.choice(usable)
        if reserve([port, *(port + offset for offset in offsets)]):
            return port
    raise RuntimeError(
        f"no free ports at {list(offsets)} from one in {usable.start}-{usable.stop - 1}"
    )
