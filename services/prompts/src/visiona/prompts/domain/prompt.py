"""The prompt: input checks, the trigger word, style packs and their templates, and what
preparing (PreparePrompt) or enhancing (EnhancePrompt) one gives."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from visiona.kit.errors import InvalidArgument

MAX_PROMPT_CHARS = 2000

SUBJECT = "{subject}"

# The training service's rule for trigger words: a token no caption contains by accident.
_TRIGGER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,31}$")
# The user's way of naming themselves, replaced by the trigger word in the subject.
_SELF = re.compile(r"\b(?:me|myself)\b", re.IGNORECASE)


def clean_prompt(prompt: str, *, code: str | None = None) -> str:
    """The prompt as it will be sent; raises for empty or oversized input.

    ``code`` replaces the specific error codes (``prompt_empty``, ``prompt_too_long``) with
    one, for contracts that promise a single code.
    """
    text = " ".join(prompt.split())
    if not text:
        raise InvalidArgument("the prompt is empty", code=code or "prompt_empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidArgument(
            f"the prompt is longer than {MAX_PROMPT_CHARS} characters",
            code=code or "prompt_too_long",
        )
    return text


def check_trigger_word(word: str) -> str:
    word = word.strip()
    if not _TRIGGER.match(word):
        raise InvalidArgument(
            "trigger_word must be 3-32 letters, digits or _, starting with a letter",
            code="trigger_word_invalid",
        )
    return word


def contains_word(text: str, word: str) -> bool:
    """True when ``word`` occurs in ``text`` as a whole token, with its exact case."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", text) is not None


def subject_of(prompt: str, trigger_word: str) -> str:
    """The prompt with the trigger word in it: kept as is when the user wrote it, else put in
    place of the first "me"/"myself", else put in front."""
    if contains_word(prompt, trigger_word):
        return prompt
    replaced, n = _SELF.subn(trigger_word, prompt, count=1)
    return replaced if n else f"{trigger_word} {prompt}"


def ensure_trigger_word(prompt: str, trigger_word: str) -> str:
    """``prompt`` unchanged when it has the trigger word, else with it put back at the start."""
    return prompt if contains_word(prompt, trigger_word) else f"{trigger_word}, {prompt}"


@dataclass(frozen=True)
class StylePack:
    """A curated look: templates with ``{subject}``, and what the look avoids."""

    id: str
    name: str
    description: str
    templates: tuple[str, ...]
    negative_cues: tuple[str, ...] = ()

    def template_for(self, prompt: str, trigger_word: str) -> str:
        """One of the pack's templates, the same one for the same prompt and trigger word
        (so an identical request is identical, and different prompts get variety)."""
        if not self.templates:
            return SUBJECT
        digest = hashlib.sha256(f"{trigger_word}\x00{prompt.casefold()}".encode()).digest()
        return self.templates[digest[0] % len(self.templates)]


def apply_template(template: str, prompt: str, trigger_word: str) -> str:
    """The template with the subject (the prompt carrying the trigger word) in its place.

    Plain replacement, not ``str.format``: the user's text may contain braces.
    """
    subject = subject_of(prompt, trigger_word).rstrip(" .,;")
    text = template.replace(SUBJECT, subject) if SUBJECT in template else f"{subject}, {template}"
    return ensure_trigger_word(text, trigger_word)


@dataclass(frozen=True)
class Enhancement:
    id: uuid.UUID
    user_id: str
    prompt: str
    enhanced_prompt: str
    model: str
    input_tokens: int
    output_tokens: int
    created_at: datetime


@dataclass(frozen=True)
class PreparedPrompt:
    """The answer to PreparePrompt (see the proto for the meaning of each field)."""

    prompt: str
    enhanced: bool = False
    degraded: bool = False
    refused: bool = False
    refusal_reason: str = ""
    refusal_message: str = ""
    reason: str = ""
    enhancement_id: uuid.UUID | None = None
