"""PDF extraction with PyMuPDF: text per page, metadata, outline and attachment names."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from extractors.base import METADATA_ONLY, Extraction, Limits
from pipeline.errors import CorruptFile, ExtractionTimeout, TooManyPages

logger = logging.getLogger(__name__)

#: version the pipeline is tested with
PYMUPDF_REQUIREMENT = "pymupdf==1.28.2"
#: outline (bookmark) titles kept at most
MAX_OUTLINE_ENTRIES = 200
#: characters kept of one outline title
MAX_OUTLINE_TITLE_CHARS = 300
#: embedded file names kept at most
MAX_ATTACHMENTS = 200
#: bytes at the end of a file searched for ``%%EOF`` (absent: the file was cut short)
EOF_WINDOW = 1024
#: separator between the text of two pages (form feed)
PAGE_SEPARATOR = "\f"

#: control characters (math fonts map glyphs to them) that would blur the page separator
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_PDF_DATE = re.compile(
    r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?"
    r"(?:([Zz+\-])(?:(\d{2})'?(?:(\d{2})'?)?)?)?\s*$"
)


def _import_pymupdf() -> ModuleType:
    """Import PyMuPDF; raises ``RuntimeError`` with the install command if it is missing."""
    try:
        import pymupdf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            f"PDF extraction needs PyMuPDF: pip install {PYMUPDF_REQUIREMENT}"
        ) from exc
    return pymupdf


_Errors = tuple[type[BaseException], ...]


def _library_errors(pymupdf: ModuleType) -> _Errors:
    """Exceptions PyMuPDF raises for bad input (its own, MuPDF's, and built-in ones)."""
    return (RuntimeError, ValueError, IndexError, KeyError, pymupdf.mupdf.FzErrorBase)


def normalize_pdf_date(value: str | None) -> str | None:
    """A PDF date (``D:20220403180542+02'00'``) as ISO 8601, or ``None`` if it cannot be parsed.

    Missing month/day default to 1 and missing time fields to 0; a date without a zone gives
    a naive ISO string.
    """
    if not value:
        return None
    match = _PDF_DATE.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, sign, tz_hours, tz_minutes = match.groups()
    tz: timezone | None = None
    if sign in ("Z", "z"):
        tz = UTC
    elif sign:
        offset = timedelta(hours=int(tz_hours or 0), minutes=int(tz_minutes or 0))
        if offset >= timedelta(hours=24):
            return None
        tz = timezone(-offset if sign == "-" else offset)
    try:
        parsed = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=tz,
        )
    except ValueError:
        return None
    return parsed.isoformat()


def extract_pdf(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    """Extract text and metadata from a PDF.

    Pages are joined with form feeds (control characters inside a page become spaces, so a form
    feed always separates pages).  ``metadata["textless_pages"]`` counts pages that show images
    but have no text layer (scans, see ``extractors.ocr.needs_ocr``).  A password-protected PDF
    that does not open with the empty password comes back ``metadata_only`` with reason
    ``encrypted`` and no text.

    Raises ``CorruptFile`` if PyMuPDF cannot open the file, finds no page (a page tree lost beyond
    repair) or can read none of them, or the file is truncated and gives no text,
    ``TooManyPages`` above ``limits.max_pages``, ``ExtractionTimeout`` when ``limits.max_seconds``
    run out between pages, and ``RuntimeError`` if PyMuPDF is not installed.
    """
    pymupdf = _import_pymupdf()
    started = time.monotonic()
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    pymupdf.TOOLS.reset_mupdf_warnings()
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except _library_errors(pymupdf) as exc:
        raise CorruptFile(_library_message(pymupdf, exc), path=str(path)) from exc
    try:
        extraction = _extract_open_document(pymupdf, doc, content_type, limits, started)
        if doc.is_repaired:
            _check_repaired(path, extraction)
        return extraction
    finally:
        doc.close()


def _check_repaired(path: Path, extraction: Extraction) -> None:
    """Mark a PDF MuPDF had to repair; a truncated one that gave no text is ``CorruptFile``."""
    extraction.metadata["repaired"] = True
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - EOF_WINDOW, 0))
        truncated = b"%%EOF" not in handle.read()
    if truncated and not extraction.text.strip("\f \n"):
        raise CorruptFile("truncated PDF (no %%EOF): repaired, but no text on any page")


def _extract_open_document(
    pymupdf: ModuleType, doc: Any, content_type: str, limits: Limits, started: float
) -> Extraction:
    """Extraction of an opened ``pymupdf.Document`` (see ``extract_pdf`` for what is raised)."""
    errors = _library_errors(pymupdf)
    if doc.needs_pass and not doc.authenticate(""):
        return Extraction(
            content_type=content_type,
            outcome=METADATA_ONLY,
            reason="encrypted",
            pages=_page_count_or_none(doc, errors),
            metadata={"encrypted": True},
        )
    page_count = doc.page_count
    if page_count == 0:
        detail = _library_message(pymupdf, None)
        raise CorruptFile(f"no page found: {detail}" if detail else "no page found", pages=0)
    if page_count > limits.max_pages:
        raise TooManyPages(
            f"{page_count} pages, limit {limits.max_pages}",
            pages=page_count,
            max_pages=limits.max_pages,
        )
    texts: list[str] = []
    chars, page_errors, textless, truncated = 0, 0, 0, False
    for number in range(page_count):
        _check_time(started, limits, number)
        try:
            page = doc.load_page(number)
            page_text = page.get_text("text")
            textless += is_image_only(page, page_text)
        except errors as exc:  # one broken page must not lose the others
            logger.warning("page %d unreadable: %s", number + 1, exc)
            page_errors += 1
            page_text = ""
        texts.append(_CONTROL_CHARS.sub(" ", page_text))
        chars += len(page_text) + len(PAGE_SEPARATOR)
        # MuPDF keeps decoded streams of pages already read; a 300 MB scan would pile up
        pymupdf.TOOLS.store_shrink(100)
        if chars > limits.max_chars and number + 1 < page_count:
            truncated = True
            break
    if page_errors == page_count:
        detail = _library_message(pymupdf, None)
        raise CorruptFile(f"no page readable: {detail}" if detail else "no page readable")
    extraction = Extraction(content_type=content_type, text=PAGE_SEPARATOR.join(texts))
    extraction.pages = page_count
    extraction.truncated = truncated
    extraction.metadata = _document_metadata(doc, errors)
    extraction.title = extraction.metadata.pop("title", None)
    extraction.author = extraction.metadata.pop("author", None)
    if page_errors:
        extraction.metadata["page_errors"] = page_errors
    if textless:
        extraction.metadata["textless_pages"] = textless
    if doc.is_encrypted or (doc.metadata or {}).get("encryption"):
        extraction.metadata["encrypted"] = True
    warnings = _warning_lines(pymupdf)
    if warnings:
        extraction.metadata["pdf_warnings"] = len(warnings)
    extraction.limit_text(limits.max_chars)
    return extraction


def is_image_only(page: Any, page_text: str) -> bool:
    """The page shows images but has no text layer: a scan that OCR may read."""
    return not page_text.strip() and bool(page.get_images(full=False))


def _check_time(started: float, limits: Limits, page_index: int) -> None:
    """Raise ``ExtractionTimeout`` if the wall-time budget is spent."""
    elapsed = time.monotonic() - started
    if elapsed > limits.max_seconds:
        raise ExtractionTimeout(
            f"{elapsed:.1f}s spent before page {page_index + 1}, limit {limits.max_seconds}s",
            elapsed=elapsed,
            page=page_index + 1,
        )


def _page_count_or_none(doc: Any, errors: _Errors) -> int | None:
    """The page count of a locked document, ``None`` if it cannot be known (0 or an error)."""
    try:
        count = int(doc.page_count)
    except errors:
        return None
    return count if count > 0 else None


def _document_metadata(doc: Any, errors: _Errors) -> dict[str, Any]:
    """Info-dictionary fields, dates as ISO 8601, outline titles and attachment names."""
    info: dict[str, Any] = doc.metadata or {}
    result: dict[str, Any] = {}
    for key in ("title", "author", "subject", "keywords", "creator", "producer", "format"):
        value = (info.get(key) or "").replace("\x00", "").strip()
        if value:
            result[key] = value
    for key, name in (("creationDate", "created"), ("modDate", "modified")):
        raw = (info.get(key) or "").strip()
        if raw:
            iso = normalize_pdf_date(raw)
            result[name if iso else f"{name}_raw"] = iso or raw
    outline = _outline_titles(doc, errors)
    if outline:
        result["outline"] = outline
    attachments = _attachment_names(doc, errors)
    if attachments:
        result["attachments"] = attachments
    return result


def _outline_titles(doc: Any, errors: _Errors) -> list[str]:
    """Up to ``MAX_OUTLINE_ENTRIES`` non-empty outline titles in document order."""
    try:
        toc = doc.get_toc(simple=True)
    except errors as exc:
        logger.debug("outline unreadable: %s", exc)
        return []
    titles = [str(entry[1]).strip()[:MAX_OUTLINE_TITLE_CHARS] for entry in toc]
    return [title for title in titles if title][:MAX_OUTLINE_ENTRIES]


def _attachment_names(doc: Any, errors: _Errors) -> list[str]:
    """Up to ``MAX_ATTACHMENTS`` names of embedded files."""
    try:
        names = doc.embfile_names()
    except errors as exc:
        logger.debug("attachments unreadable: %s", exc)
        return []
    return [str(name) for name in names[:MAX_ATTACHMENTS]]


def _warning_lines(pymupdf: ModuleType) -> list[str]:
    """MuPDF warnings collected since the last reset (per process, so approximate)."""
    return [line for line in (pymupdf.TOOLS.mupdf_warnings() or "").splitlines() if line]


def _library_message(pymupdf: ModuleType, exc: BaseException | None) -> str:
    """The library's error message, with MuPDF's last warning when it says more."""
    message = str(exc) if exc is not None else ""
    warnings = _warning_lines(pymupdf)
    if warnings and warnings[-1] not in message:
        message = f"{message}: {warnings[-1]}" if message else warnings[-1]
    return message
