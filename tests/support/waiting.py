"""Waiting for a positive signal, bounded: never "sleep, then assert nothing happened".

A test waits until what it expects can be observed (a row, a log line, an event consumed, a
provider's delivery), and fails naming what it waited for and the last value it saw.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
STEP_S = 0.05


def wait_for(
    what: str, probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 20
) -> T:
    """Probe until ``done(value)``; return that value.

    A probe whose HTTP call times out has seen nothing yet (a loaded machine answers slowly),
    so it is asked again within the same bound; any other error fails at once.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = probe()
        except httpx.TimeoutException as slow:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last: {slow!r}") from slow
        else:
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last: {value!r}")
        time.sleep(STEP_S)


async def eventually(
    what: str, probe: Callable[[], Awaitable[Any] | Any], timeout_s: float = 30
) -> Any:
    """Call (and await, when it answers an awaitable) ``probe()`` until it is truthy, without
    blocking the event loop; return that value."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {value!r}")
        await asyncio.sleep(STEP_S)


def serving(
    proc: subprocess.Popen[bytes], url: str, timeout_s: float = 120, log: Path | None = None
) -> Any:
    """Wait until the server ``proc`` started answers ``url``; return the JSON it answered
    (a page's text, for a page).

    Fails at once, with its error output (or the end of ``log``), if the process exits. The bound is generous: on a
    loaded machine importing a server takes tens of seconds, and the failure this waits to
    rule out (the process dying) is signalled by the process itself."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            _, err = proc.communicate()
            said = log.read_text()[-3000:] if log is not None else err
            raise AssertionError(f"{url}: the server exited ({proc.returncode}): {said!r}")
        try:
            answer = httpx.get(url, timeout=5).raise_for_status()
            if "json" not in answer.headers.get("content-type", ""):
                return answer.text
            return answer.json()
        except httpx.TransportError:
            if time.monotonic() > deadline:
                said = log.read_text()[-3000:] if log is not None else ""
                raise AssertionError(f"timed out waiting for {url} to answer {said}") from None
            time.sleep(STEP_S)
