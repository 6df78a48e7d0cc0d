"""RTF: a small tokenizer that keeps the visible text, decodes code pages and reads ``\\info``.

Handles ``\\'hh`` bytes in the document's code page (``\\ansicpgN``) or the current font's charset
(``\\fcharsetN``, so Shift_JIS RTF from Japanese Word reads right), ``\\uN`` with ``\\ucN``
fallbacks, and skips destinations that are not text (font and colour tables, pictures, objects,
``{\\*\\...}``).  Groups are tracked with an explicit stack: no recursion, however deep.
"""

from __future__ import annotations

import codecs
import logging
import mmap
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from extractors.base import Extraction, Limits
from extractors.budget import Deadline, TextSink
from pipeline.errors import CorruptFile

logger = logging.getLogger(__name__)

#: characters kept of an ``\\info`` field
MAX_INFO_CHARS = 1000
#: tokens between two deadline checks
CHECK_EVERY = 10_000

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([^\\{}\r\n]+)|[\r\n]+",
    re.DOTALL,
)
#: destinations whose content is not document text
_SKIP = frozenset(
    {
        "fonttbl", "colortbl", "stylesheet", "listtable", "listoverridetable", "rsidtbl",
        "generator", "pict", "object", "themedata", "colorschememapping", "datastore",
        "latentstyles", "xmlnstbl", "fldinst", "header", "footer", "headerl", "headerr",
        "footerl", "footerr", "headerf", "footerf", "bkmkstart", "bkmkend", "filetbl",
        "revtbl", "pgdsctbl", "mmathPr", "wgrffmtfilter", "nonshppict", "shppict", "sp",
        "operator", "password", "passwordhash", "xmlopen", "private", "info",
    }
)  # fmt: skip
_INFO_TEXT = {"title": "title", "author": "author", "subject": "subject", "keywords": "keywords",
              "operator": "last_modified_by", "company": "company"}  # fmt: skip
_INFO_DATES = {"creatim": "created", "revtim": "modified"}
_TEXT_WORDS = {"par": "\n", "line": "\n", "sect": "\n", "tab": "\t", "cell": "\t", "row": "\n",
               "page": "\n", "emdash": "—", "endash": "–", "bullet": "•", "lquote": "‘",
               "rquote": "’", "ldblquote": "“", "rdblquote": "”", "~": "\u00a0"}  # fmt: skip
_SYMBOLS = {"\\": "\\", "{": "{", "}": "}", "~": "\u00a0", "_": "-", "-": "", "\n": "\n",
            "\r": "\n"}  # fmt: skip
#: ``\\fcharsetN`` -> Python codec
_CHARSETS = {0: "cp1252", 128: "cp932", 129: "cp949", 134: "gbk", 136: "big5", 161: "cp1253",
             162: "cp1254", 163: "cp1258", 177: "cp1255", 178: "cp1256", 186: "cp1257",
             204: "cp1251", 222: "cp874", 238: "cp1250"}  # fmt: skip


@dataclass(frozen=True)
class _State:
    """What a group inherits: skipping, the destination it is in, the codec, ``\\uc``."""

    skip: bool = False
    destination: str = ""
    codec: str = "cp1252"
    uc: int = 1


class _Parser:
    def __init__(self, sink: TextSink, deadline: Deadline) -> None:
        self.sink, self.deadline = sink, deadline
        self.state = _State()
        self.stack: list[_State] = []
        self.pending = bytearray()  # \'hh bytes not yet decoded
        self.skip_chars = 0  # fallback characters after \uN still to skip
        self.fonts: dict[int, str] = {}
        self.font: int | None = None
        self.info: dict[str, Any] = {}
        self.info_text: list[str] = []
        self.date: dict[str, int] = {}
        self.default_codec = "cp1252"

    def emit(self, text: str) -> None:
        if self.state.destination in _INFO_TEXT:
            self.info_text.append(text)
        elif not self.state.skip:
            self.sink.add(text)

    def flush(self) -> None:
        if self.pending:
            self.emit(codecs.decode(bytes(self.pending), self.state.codec, "replace"))
            self.pending.clear()

    def open_group(self) -> None:
        self.flush()
        self.stack.append(self.state)

    def close_group(self) -> None:
        self.flush()
        closing = self.state
        if closing.destination in _INFO_TEXT and closing.destination not in (
            self.stack[-1].destination if self.stack else ""
        ):
            value = "".join(self.info_text).strip()[:MAX_INFO_CHARS]
            if value:
                self.info[_INFO_TEXT[closing.destination]] = value
            self.info_text.clear()
        if closing.destination == "fonttbl" and self.font is not None:
            self.font = None
        self.state = self.stack.pop() if self.stack else _State()

    def word(self, name: str, arg: int | None, starred: bool) -> None:
        if name != "u":
            self.flush()
        if starred or name in _SKIP or name in _INFO_TEXT or name in _INFO_DATES:
            self._destination(name, starred)
        elif name == "u" and arg is not None:
            self.flush()
            self.emit(chr(arg % 65536) if -32768 <= arg < 65536 else "\ufffd")
            self.skip_chars = self.state.uc
            return
        elif name == "uc" and arg is not None:
            self.state = replace(self.state, uc=max(0, min(arg, 10)))
        elif name == "ansicpg" and arg:
            self.default_codec = _codec_for_page(arg) or self.default_codec
            self.state = replace(self.state, codec=self.default_codec)
        elif name == "f" and arg is not None:
            self._font(arg)
        elif name == "fcharset" and arg is not None and self.font is not None:
            self.fonts[self.font] = _CHARSETS.get(arg, self.default_codec)
        elif name in ("yr", "mo", "dy", "hr", "min", "sec") and arg is not None:
            self.date[name] = arg
        elif name in _TEXT_WORDS:
            self.emit(_TEXT_WORDS[name])
        self.skip_chars = 0

    def _destination(self, name: str, starred: bool) -> None:
        if name in _INFO_DATES:
            self.date = {}
        self.state = replace(self.state, skip=True, destination=name if not starred else "*")

    def _font(self, number: int) -> None:
        if self.state.destination == "fonttbl":
            self.font = number
        else:
            codec = self.fonts.get(number, self.default_codec)
            self.state = replace(self.state, codec=codec)

    def close_date(self) -> None:
        destination = self.state.destination
        if destination in _INFO_DATES and {"yr", "mo", "dy"} <= self.date.keys():
            d = self.date
            self.info[_INFO_DATES[destination]] = (
                f"{d['yr']:04d}-{d['mo']:02d}-{d['dy']:02d}T{d.get('hr', 0):02d}:"
                f"{d.get('min', 0):02d}:{d.get('sec', 0):02d}"
            )


def _codec_for_page(page: int) -> str | None:
    name = {932: "cp932", 936: "gbk", 949: "cp949", 950: "big5"}.get(page, f"cp{page}")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _parse(data: bytes | mmap.mmap, parser: _Parser) -> None:
    starred_next = False
    for index, match in enumerate(_TOKEN.finditer(data)):
        if index % CHECK_EVERY == 0:
            parser.deadline.check(f"RTF token {index}")
        word, arg, hexbyte, symbol, brace, text = match.groups()
        if hexbyte is not None:
            if parser.skip_chars:
                parser.skip_chars -= 1
            else:
                parser.pending.append(int(hexbyte, 16))
        elif word is not None:
            parser.word(word.decode("ascii"), int(arg) if arg else None, starred_next)
            starred_next = False
        elif symbol is not None:
            if symbol == b"*":
                starred_next = True
            else:
                parser.flush()
                parser.emit(_SYMBOLS.get(symbol.decode("latin-1"), ""))
        elif brace == b"{":
            parser.open_group()
        elif brace == b"}":
            parser.close_date()
            parser.close_group()
        elif text is not None:
            parser.flush()
            chunk = text.decode(parser.state.codec, "replace")
            if parser.skip_chars:
                skipped = min(parser.skip_chars, len(chunk))
                chunk, parser.skip_chars = chunk[skipped:], parser.skip_chars - skipped
            parser.emit(chunk)
        if parser.sink.full:
            return
    parser.flush()


def extract_rtf(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    """Extract the visible text and ``\\info`` (title, author, dates) of an RTF file.

    Raises ``CorruptFile`` if the file does not start with ``{\\rtf``, ``ExtractionTimeout`` and
    ``OSError`` if the file cannot be read.
    """
    sink, deadline = TextSink(limits), Deadline(limits)
    parser = _Parser(sink, deadline)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if not data[:16].lstrip().startswith(b"{\\rtf"):
            raise CorruptFile("not an RTF file (no {\\rtf header)")
        _parse(data, parser)
    lines = [line.rstrip() for line in sink.text().split("\n")]
    text = "\n".join(lines).strip("\n")
    extraction = Extraction(content_type=content_type, text=text, truncated=sink.truncated)
    extraction.title = parser.info.pop("title", None)
    extraction.author = parser.info.pop("author", None)
    extraction.metadata = {"encoding": parser.default_codec, **parser.info}
    return extraction
