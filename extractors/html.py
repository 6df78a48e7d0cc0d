"""HTML extraction: visible text via ``html.parser``, ``<title>`` as the title."""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from pathlib import Path

from extractors.base import Extraction, Limits
from extractors.text import BYTES_PER_CHAR, decode_bytes

#: bytes searched for a ``<meta charset>`` declaration
META_CHARSET_WINDOW = 2048
#: characters kept of the title
MAX_TITLE_CHARS = 1000

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
#: elements whose content is never shown
_HIDDEN = frozenset({"script", "style", "template", "svg", "math"})
#: elements that end a line of text
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")


class _TextCollector(HTMLParser):
    """Collects visible text and the first ``<title>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._hidden_depth = 0
        self._in_title = False
        self._title_done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self._title_done:
            self._in_title = True
        elif tag in _HIDDEN:
            self._hidden_depth += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title, self._title_done = False, True
        elif tag in _HIDDEN and self._hidden_depth:
            self._hidden_depth -= 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._hidden_depth:
            self.parts.append(data)


def _declared_charset(data: bytes) -> str | None:
    """The Python codec named by a ``<meta charset>`` near the top, if Python knows it."""
    match = _META_CHARSET.search(data[:META_CHARSET_WINDOW])
    if match is None:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None


def _decode_html(data: bytes, complete: bool) -> tuple[str, str]:
    """Decode by BOM, then the declared charset if it decodes strictly, then ``decode_bytes``."""
    declared = _declared_charset(data)
    if declared and not data.startswith(
        (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    ):
        decoder = codecs.getincrementaldecoder(declared)(errors="strict")
        try:
            return decoder.decode(data, final=complete), declared
        except UnicodeDecodeError:
            pass
    return decode_bytes(data, complete=complete)


def html_to_text(markup: str) -> tuple[str, str | None]:
    """``(visible text, title)`` of an HTML document; never raises on malformed markup."""
    parser = _TextCollector()
    parser.feed(markup)
    parser.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    title = _SPACES.sub(" ", "".join(parser.title_parts)).strip()[:MAX_TITLE_CHARS]
    return text, title or None


def extract_html(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    """Extract the visible text and title of an HTML file.

    Reads at most ``limits.max_chars * BYTES_PER_CHAR`` bytes (marking the result truncated if the
    file is longer).  Raises ``OSError`` if the file cannot be read.
    """
    budget = max(limits.max_chars, 1) * BYTES_PER_CHAR
    with path.open("rb") as handle:
        data = handle.read(budget + 1)
    truncated = len(data) > budget
    markup, encoding = _decode_html(data[:budget], complete=not truncated)
    text, title = html_to_text(markup)
    extraction = Extraction(
        content_type=content_type,
        text=text,
        title=title,
        truncated=truncated,
        metadata={"encoding": encoding},
    )
    extraction.limit_text(limits.max_chars)
    return extraction
