"""Usage of the platform recorded from other services' events (not billed in credits)."""

from __future__ import annotations

from dataclasses import dataclass

USAGE_PROMPT_ENHANCEMENT = "prompt_enhancement"


@dataclass(frozen=True)
class UsageSummary:
    enhancements: int
    llm_tokens: int
