"""Prompt rules."""

from __future__ import annotations

import pytest

from visiona.kit.errors import InvalidArgument
from visiona.prompts.domain import MAX_PROMPT_CHARS, clean_prompt


def test_whitespace_is_collapsed() -> None:
    assert clean_prompt("  me   on\n a beach ") == "me on a beach"


@pytest.mark.parametrize(
    ("prompt", "code"), [("   ", "prompt_empty"), ("x" * (MAX_PROMPT_CHARS + 1), "prompt_too_long")]
)
def test_empty_and_oversized_prompts_are_refused(prompt: str, code: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        clean_prompt(prompt)
    assert info.value.code == code
