"""Fixtures the end-to-end test modules share."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_generation import ready_owner
from tests.support.stack import RunningStack


@pytest.fixture
def owner(stack: RunningStack) -> tuple[str, dict[str, Any]]:
    """A user with a ready model and 50 credits left."""
    return ready_owner(stack)
