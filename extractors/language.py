"""A cheap language guess from the characters of the text (scripts first, stop words second).

Good enough to pick an analyzer or an OCR language; not a language identifier.
"""

from __future__ import annotations

import re

#: characters of the text looked at
SAMPLE_CHARS = 20_000
#: share of letters a script needs before it names the language
MIN_SCRIPT_SHARE = 0.3
#: share of words that must be stop words of a Latin-script language
MIN_STOPWORD_SHARE = 0.08

_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("kana", re.compile("[\u3041-\u30ff\uff66-\uff9f]")),
    ("han", re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")),
    ("ko", re.compile("[\uac00-\ud7af\u1100-\u11ff]")),
    ("ru", re.compile("[\u0400-\u04ff]")),
    ("el", re.compile("[\u0370-\u03ff]")),
    ("ar", re.compile("[\u0600-\u06ff]")),
    ("he", re.compile("[\u0590-\u05ff]")),
    ("th", re.compile("[\u0e00-\u0e7f]")),
    ("latin", re.compile("[A-Za-z\u00c0-\u024f]")),
)
_STOPWORDS = {
    code: frozenset(words.split())
    for code, words in (
        ("en", "the and of to in is that for it with as was on are be this by"),
        ("de", "der die das und ist nicht mit ein eine den von zu sich des auf"),
        ("fr", "le la les et est des une un du que pour dans pas sur au"),
        ("es", "el la los las y es que de en un una por con para del"),
    )
}
_WORD = re.compile(r"[a-zà-ÿ]+")


def guess_language(text: str) -> str | None:
    """ISO 639-1 code (``ja``, ``zh``, ``ko``, ``en`` ...) or ``None`` if nothing stands out.

    Any kana makes Japanese (kanji-only text with kana is Japanese, without is Chinese).
    """
    sample = text[:SAMPLE_CHARS]
    counts = {name: len(pattern.findall(sample)) for name, pattern in _SCRIPTS}
    letters = sum(counts.values())
    if not letters:
        return None
    if counts["kana"] and (counts["kana"] + counts["han"]) / letters >= MIN_SCRIPT_SHARE / 3:
        return "ja"
    if counts["han"] / letters >= MIN_SCRIPT_SHARE:
        return "zh"
    best = max(counts, key=lambda name: counts[name])
    if best != "latin":
        return best if counts[best] / letters >= MIN_SCRIPT_SHARE else None
    words = _WORD.findall(sample.lower())
    if not words:
        return None
    scores = {code: sum(w in stop for w in words) / len(words) for code, stop in _STOPWORDS.items()}
    code = max(scores, key=lambda name: scores[name])
    return code if scores[code] >= MIN_STOPWORD_SHARE else None
