"""Plain-text extraction (txt, csv, tsv, markdown) with encoding detection tuned for Japanese.

Decoding order: byte-order mark, strict UTF-8, ISO-2022-JP (when its escapes are present),
strict CP932 / EUC-JP (the more plausible Japanese wins), charset-normalizer, Latin-1.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

from extractors.base import Extraction, Limits

logger = logging.getLogger(__name__)

#: bytes read per character of ``Limits.max_chars`` (UTF-8 needs at most 4)
BYTES_PER_CHAR = 4
#: the encoding recorded when nothing better fits; it decodes any byte string
LAST_RESORT_ENCODING = "latin-1"
#: share of non-ASCII characters that must look Japanese before a lone CP932/EUC-JP decode wins
MIN_JAPANESE_RATIO = 0.6

#: characters of a decoded candidate looked at when judging how Japanese it reads
SCORE_SAMPLE_CHARS = 65_536

_BOM_CODECS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),  # named so; the BOM is cut before decoding
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_JIS_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(I")
_JAPANESE_CANDIDATES = ("cp932", "euc_jp")
#: hiragana, katakana, CJK punctuation, CJK ideographs, full-width ASCII forms
_JAPANESE_CHAR = re.compile("[\u3000-\u30ff\u4e00-\u9fff\uff01-\uff5e]")
_KANA = re.compile("[\u3041-\u30ff]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_HALFWIDTH_KANA = re.compile("[\uff61-\uff9f]")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def read_text_file(path: Path, limits: Limits) -> tuple[str, str, bool]:
    """Read and decode at most ``limits.max_chars * BYTES_PER_CHAR`` bytes of ``path``.

    Returns ``(text, encoding, truncated)``; ``truncated`` is set when the file is longer than
    what was read.  Raises ``OSError`` if the file cannot be read.
    """
    budget = max(limits.max_chars, 1) * BYTES_PER_CHAR
    with path.open("rb") as handle:
        data = handle.read(budget + 1)
    truncated = len(data) > budget
    text, encoding = decode_bytes(data[:budget], complete=not truncated)
    return text, encoding, truncated


def decode_bytes(data: bytes, *, complete: bool = True) -> tuple[str, str]:
    """Decode ``data`` and name the encoding used; never raises.

    ``complete=False`` means ``data`` was cut from a longer file, so a character split at the end
    is dropped instead of counting against an encoding.
    """
    for bom, codec in _BOM_CODECS:
        if data.startswith(bom):
            body = data[len(bom) :]
            return _decode(body, codec, complete=complete, strict=False) or "", codec
    text = _decode(data, "utf-8", complete=complete)
    if text is not None:
        if any(escape in data for escape in _JIS_ESCAPES):
            jis = _decode(data, "iso2022_jp", complete=complete)
            if jis is not None:
                return jis, "iso2022_jp"
        return text, "utf-8"
    japanese = _decode_japanese(data, complete=complete)
    if japanese is not None:
        return japanese
    normalized = _charset_normalizer_guess(data)
    if normalized is not None:
        return normalized
    return data.decode(LAST_RESORT_ENCODING), LAST_RESORT_ENCODING


def _decode(data: bytes, codec: str, *, complete: bool, strict: bool = True) -> str | None:
    """``data`` decoded with ``codec``, or ``None`` if a strict decode fails."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict" if strict else "replace")
    try:
        return decoder.decode(data, final=complete)
    except UnicodeDecodeError:
        return None


def _decode_japanese(data: bytes, *, complete: bool) -> tuple[str, str] | None:
    """CP932 or EUC-JP, whichever decodes strictly and reads most like Japanese.

    When both decode, charset-normalizer (limited to the two) picks unless the other reads as more
    Japanese (share of Japanese characters, then number of kana).  A single candidate must look
    Japanese (``MIN_JAPANESE_RATIO``), else ``None`` lets the general detector try.
    """
    decoded = {
        codec: text
        for codec in _JAPANESE_CANDIDATES
        if (text := _decode(data, codec, complete=complete)) is not None
    }
    if not decoded:
        return None
    if len(decoded) > 1:
        preferred = _charset_normalizer_guess(data, candidates=list(decoded))
        if preferred is not None and preferred[1] in decoded:
            codec = preferred[1]
            if _japanese_score(decoded[codec]) >= _japanese_score(_other(decoded, codec)):
                return decoded[codec], codec
        codec = max(decoded, key=lambda name: _japanese_score(decoded[name]))
        return decoded[codec], codec
    codec, text = next(iter(decoded.items()))
    if _japanese_score(text, halfwidth_kana=True)[0] >= MIN_JAPANESE_RATIO:
        return text, codec
    return None


def _other(decoded: dict[str, str], codec: str) -> str:
    """The decoded text of the candidate that is not ``codec``."""
    return next(text for name, text in decoded.items() if name != codec)


def _japanese_score(text: str, *, halfwidth_kana: bool = False) -> tuple[float, int]:
    """``(share of non-ASCII characters that are Japanese, number of kana)`` for ranking.

    Only the first ``SCORE_SAMPLE_CHARS`` characters are looked at.

    Half-width katakana, which EUC-JP bytes turn into when read as CP932, count only when
    ``halfwidth_kana`` is set (when CP932 is the only candidate left).
    """
    text = text[:SCORE_SAMPLE_CHARS]
    non_ascii = len(_NON_ASCII.findall(text))
    if not non_ascii:
        return 0.0, 0
    halfwidth = len(_HALFWIDTH_KANA.findall(text)) if halfwidth_kana else 0
    japanese = len(_JAPANESE_CHAR.findall(text)) + halfwidth
    return japanese / non_ascii, len(_KANA.findall(text)) + halfwidth


def _charset_normalizer_guess(
    data: bytes, candidates: list[str] | None = None
) -> tuple[str, str] | None:
    """charset-normalizer's best decoding as ``(text, python codec name)``, or ``None``."""
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=candidates).best()
    if best is None:
        return None
    return str(best), best.encoding


def extract_text(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    """Extract a plain-text file (txt, csv, tsv, markdown).

    The encoding goes to ``metadata["encoding"]``; line ends become ``\\n``; a Markdown file's first
    heading becomes the title.  Raises ``OSError`` if the file cannot be read.
    """
    text, encoding, truncated = read_text_file(path, limits)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    extraction = Extraction(
        content_type=content_type,
        text=text,
        truncated=truncated,
        metadata={"encoding": encoding},
    )
    if content_type == "text/markdown":
        heading = _MARKDOWN_HEADING.search(text)
        extraction.title = heading.group(1).strip() if heading else None
    extraction.limit_text(limits.max_chars)
    return extraction
