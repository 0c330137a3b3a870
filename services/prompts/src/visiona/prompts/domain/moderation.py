"""The fast rule layer of moderation: word lists and patterns on a normalised prompt.

It refuses only clear violations, without calling the LLM; borderline prompts are the LLM's
to judge. Normalisation defeats the cheap obfuscations: case, accents and look-alike letters
(Cyrillic, Greek, full-width), invisible characters, leetspeak digits and symbols, letters
spaced or dotted apart ("n u d e", "r.a.p.e") and stretched letters ("gooore").

Refusal codes are stable (they reach API clients): see :data:`CATEGORIES`. Every refusal,
whoever made it (these rules, the LLM's judgement, the provider's own safety system), is kept
for its user as a :class:`ModerationDecision` and answered with :func:`refusal_error`.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass

from visiona.kit.errors import InvalidArgument
from visiona.prompts.domain.prompt import PreparedPrompt

# Stable refusal codes and the short explanation a user sees.
CATEGORIES: dict[str, str] = {
    "sexual_minors": "Sexual content involving minors is never allowed.",
    "non_consensual": "Sexual or intimate content without consent is not allowed.",
    "sexual_explicit": "Nudity and explicit sexual content are not allowed.",
    "violence_gore": "Graphic violence and gore are not allowed.",
    "hate": "Hateful content and hate symbols are not allowed.",
    "public_figure_deepfake": (
        "Images that could pass for real photos of public figures are not allowed."
    ),
    "self_harm": "Content depicting or encouraging self-harm is not allowed.",
    "other": "This prompt is not allowed by the content policy.",
}

# Cyrillic and Greek look-alikes of Latin letters (escaped: they are invisible in review).
_LOOKALIKES = "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u043a\u043c\u0442\u043d\u0432\u03b1\u03b5\u03bf\u03c1\u03bd\u03b9\u03ba\u03c4"
_LATIN = "aeopcyxijskmthbaeopvikt"
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "\u20ac": "e", "\u00a3": "l"}  # fmt: skip
# "!" and "|" are letters only inside a word ("k!ll"); elsewhere they are punctuation.
_PUNCT_AS_I = re.compile(r"[!|](?=[a-z0-9])")
_CONFUSABLES = str.maketrans({**dict(zip(_LOOKALIKES, _LATIN, strict=True)), **_LEET})
_NON_WORD = re.compile(r"[^a-z]+")
# Three or more letters in a row, each followed by the same one separator, are one word
# spelled apart ("n u d e", "r.a.p.e"); a wider gap ends the word.
_SPELLED_APART = re.compile(r"(?<![a-z])[a-z]([ .\-_*+~/])(?:[a-z]\1){1,}[a-z](?![a-z])")


def normalise(text: str) -> str:
    """Lower-case ASCII words separated by single spaces, with obfuscations undone."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(
        c for c in text if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
    )
    text = _PUNCT_AS_I.sub("i", text.casefold()).translate(_CONFUSABLES)
    text = _SPELLED_APART.sub(lambda m: m.group(0).replace(m.group(1), ""), text)
    return _NON_WORD.sub(" ", text).strip()


def _stretchable(pattern: str) -> str:
    """``pattern`` with each literal letter allowed to repeat ("gore" matches "gooore"),
    leaving escapes (``\\w``, ``\\b``), classes (``[a-z]``) and group syntax alone."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c.isalpha() and not (i >= 2 and pattern[i - 2 : i] in ("(?", "?<")):
            c = f"(?:{c}+)"
        out.append(c)
        i += 1
    return "".join(out)


def _words(*alternatives: str) -> re.Pattern[str]:
    """A whole-word pattern over normalised text (letters may be stretched)."""
    body = "|".join(_stretchable(a) for a in alternatives)
    return re.compile(rf"\b(?:{body})\b")


_MINOR = _words(
    r"child(?:ren)?",
    r"kids?",
    r"minors?",
    r"under ?age(?:d)?",
    r"pre ?teens?",
    r"toddlers?",
    r"infants?",
    r"little (?:girls?|boys?)",
    r"young (?:girls?|boys?)",
    r"school ?(?:girls?|boys?)",
    r"teens?",
)
_SEXUAL = _words(
    r"nude",
    r"nudity",
    r"naked(?! (?:eye|flame|truth))",
    r"sex(?:y|ual|ualized)?",
    r"porn\w*",
    r"erotic\w*",
    r"lingerie",
    r"topless",
    r"nsfw",
    r"explicit",
    r"seductive",
    r"undress(?:ed|ing)?",
    r"fetish",
)
# Ages are read on the raw text: normalisation turns digits into letters.
_MINOR_AGE = re.compile(r"\b(?:[1-9]|1[0-7])\s*(?:yo|y/o|years?[\s-]*old)\b", re.IGNORECASE)

RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "sexual_minors",
        _words(
            r"lolis?",
            r"loli ?con",
            r"lolitas?",
            r"shota(?: ?con)?",
            r"jail ?bait",
            r"child ?porn\w*",
            r"pa?edo(?:s|phile|philes|philia|philic)?",
        ),
    ),
    (
        "non_consensual",
        _words(
            r"rap(?:e|ed|es|ing|ist|ists)",
            r"non ?consensual",
            r"without (?:her|his|their|my) consent",
            r"sexual(?:ly)? assault\w*",
            r"revenge porn",
            r"up ?skirt\w*",
            r"forced (?:sex|nudity|to strip)",
        ),
    ),
    (
        "self_harm",
        _words(
            r"commit(?:s|ted|ting)? suicide",
            r"suicidal",
            r"self ?harm\w*",
            r"kill(?:ing|s)? (?:my|him|her|them)sel(?:f|ves)",
            r"slit(?:ting|s)? (?:my |his |her |their )?wrists?",
            r"cutting (?:my|him|her|them)sel(?:f|ves)",
            r"hang(?:ing|s)? (?:my|him|her|them)sel(?:f|ves)",
        ),
    ),
    (
        "violence_gore",
        _words(
            r"gore(?! ?tex)",
            r"gory",
            r"decapitat\w*",
            r"behead\w*",
            r"dismember\w*",
            r"disembowel\w*",
            r"mutilat\w*",
            r"entrails",
            r"guts spil\w*",
            r"severed (?:head|limbs?|arms?|legs?)",
            r"mass shooting",
        ),
    ),
    (
        "hate",
        _words(
            r"swastikas?",
            r"nazi salute",
            r"heil hitler",
            r"sieg heil",
            r"kkk",
            r"ku klux klan",
            r"white power",
            r"ethnic cleansing",
            r"gas the \w+",
        ),
    ),
    ("public_figure_deepfake", _words(r"deep ?fakes?")),
    (
        "sexual_explicit",
        _words(
            r"porn\w*",
            r"xxx",
            r"nsfw",
            r"hardcore sex",
            r"sex (?:act|scene|tape)s?",
            r"explicit sex\w*",
            r"genitals?",
            r"nude",
            r"nudity",
            r"naked(?! (?:eye|flame|truth))",
            r"topless",
        ),
    ),
)


@dataclass(frozen=True)
class RuleVerdict:
    """A clear violation the rule layer found (``category`` is a key of :data:`CATEGORIES`)."""

    category: str

    @property
    def message(self) -> str:
        return CATEGORIES[self.category]


def check_rules(*texts: str) -> RuleVerdict | None:
    """The first clear violation in ``texts`` (most severe category first), or None."""
    raw = " ".join(texts)
    text = normalise(raw)
    minor = _MINOR.search(text) is not None or _MINOR_AGE.search(raw) is not None
    if minor and _SEXUAL.search(text):
        return RuleVerdict("sexual_minors")
    for category, pattern in RULES:
        if pattern.search(text):
            return RuleVerdict(category)
    return None


def refusal_message(category: str) -> str:
    return CATEGORIES.get(category, CATEGORIES["other"])


# The stable code of a refused prompt, on every path that takes one (the generation service
# answers a PreparePrompt refusal with it too).
PROMPT_REFUSED = "prompt_refused"


def refusal_error(prepared: PreparedPrompt) -> InvalidArgument:
    """The error a refused prompt is answered with: its category's explanation."""
    return InvalidArgument(
        prepared.refusal_message or "this prompt cannot be generated", code=PROMPT_REFUSED
    )


@dataclass(frozen=True)
class ModerationDecision:
    """A refusal, kept so that its user can later see why."""

    id: uuid.UUID
    user_id: str
    prompt: str
    style_pack: str | None
    source: str
    category: str
    message: str
    provider: str | None = None
    model: str | None = None
    from_cache: bool = False

    @classmethod
    def refusal(
        cls,
        *,
        user_id: str,
        prompt: str,
        style_pack: str | None,
        source: str,
        category: str | None,
        provider: str,
        model: str,
        from_cache: bool = False,
    ) -> ModerationDecision:
        """A refusal by ``source`` (``rules``, ``llm``, ``provider``); no category is
        ``other``. One by the rule layer names no LLM: none was asked."""
        code = category or "other"
        by_llm = source != "rules"
        return cls(
            id=uuid.uuid4(),
            user_id=user_id,
            prompt=prompt,
            style_pack=style_pack,
            source=source,
            category=code,
            message=refusal_message(code),
            provider=provider if by_llm else None,
            model=model if by_llm else None,
            from_cache=from_cache,
        )

    def answer(self) -> PreparedPrompt:
        """What PreparePrompt answers for this refusal (never a prompt)."""
        return PreparedPrompt(
            prompt="", refused=True, refusal_reason=self.category, refusal_message=self.message
        )
