"""Prompt rules: input checks, the subject, templates and the trigger word."""

from __future__ import annotations

import pytest

from visiona.kit.errors import InvalidArgument
from visiona.prompts.domain.prompt import (
    MAX_PROMPT_CHARS,
    StylePack,
    apply_template,
    check_trigger_word,
    clean_prompt,
    contains_word,
    subject_of,
)

PACK = StylePack(
    id="cinematic",
    name="Cinematic",
    description="Film stills.",
    templates=(
        "cinematic film still of {subject}, anamorphic lens",
        "{subject} in a neon-lit rainy street at night",
        "dramatic close-up of {subject}, film noir lighting",
    ),
)


def test_whitespace_is_collapsed() -> None:
    assert clean_prompt("  me   on\n a beach ") == "me on a beach"


@pytest.mark.parametrize(
    ("prompt", "code"), [("   ", "prompt_empty"), ("x" * (MAX_PROMPT_CHARS + 1), "prompt_too_long")]
)
def test_empty_and_oversized_prompts_are_refused(prompt: str, code: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        clean_prompt(prompt)
    assert info.value.code == code


@pytest.mark.parametrize("prompt", ["", " \n ", "x" * (MAX_PROMPT_CHARS + 1)])
def test_one_code_can_replace_the_specific_ones(prompt: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        clean_prompt(prompt, code="prompt_invalid")
    assert info.value.code == "prompt_invalid"


@pytest.mark.parametrize("word", ["", "ab", "1tok", "to k", "t" * 33, "tök"])
def test_malformed_trigger_words_are_refused(word: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_trigger_word(word)
    assert info.value.code == "trigger_word_invalid"


@pytest.mark.parametrize(
    ("prompt", "subject"),
    [
        ("me on a beach", "TOK on a beach"),
        ("a portrait of myself in the rain", "a portrait of TOK in the rain"),
        ("TOK as an astronaut", "TOK as an astronaut"),
        ("as an astronaut", "TOK as an astronaut"),
        # "me" inside another word is not the user.
        ("a meadow at dawn", "TOK a meadow at dawn"),
    ],
)
def test_the_subject_carries_the_trigger_word(prompt: str, subject: str) -> None:
    assert subject_of(prompt, "TOK") == subject


def test_the_trigger_word_is_matched_whole_and_case_sensitively() -> None:
    assert contains_word("photo of TOK, smiling", "TOK")
    assert not contains_word("photo of TOKEN", "TOK")
    assert not contains_word("photo of tok", "TOK")


@pytest.mark.parametrize(
    "prompt",
    ["me on a beach", "a {weird} prompt with {braces}", "TOK hiking", "tok in lower case"],
)
def test_every_template_keeps_the_trigger_word_and_the_users_words(prompt: str) -> None:
    for template in PACK.templates:
        text = apply_template(template, prompt, "TOK")
        assert contains_word(text, "TOK")
        assert template.split("{subject}")[0] in text
        assert all(w in text for w in prompt.split() if w not in ("me",))


def test_a_template_without_a_subject_still_gets_one() -> None:
    assert apply_template("golden hour", "me on a hill", "vsnqwrtz") == (
        "vsnqwrtz on a hill, golden hour"
    )


def test_the_pack_picks_the_same_template_for_the_same_request() -> None:
    first = PACK.template_for("me on a beach", "TOK")
    assert all(PACK.template_for("Me on a Beach", "TOK") == first for _ in range(5))
    chosen = {PACK.template_for(f"me in city number {i}", "TOK") for i in range(40)}
    assert chosen == set(PACK.templates)
