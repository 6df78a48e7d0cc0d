"""OpenDocument text, spreadsheet and presentation (odt, ods, odp): content.xml and meta.xml.

Read through ``SafeZip`` (zip bomb limits) and defusedxml (entity attacks), streamed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from extractors.base import Extraction, Limits
from extractors.budget import Deadline, TextSink
from extractors.safezip import SafeZip
from extractors.xmlparts import BLOCK, field, iso_date, mixed_text, parse, stream_blocks
from pipeline.errors import CorruptFile, TooManyPages

logger = logging.getLogger(__name__)

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
META = "{urn:oasis:names:tc:opendocument:xmlns:meta:1.0}"
DC = "{http://purl.org/dc/elements/1.1/}"

#: sheet names kept in ``metadata["sheets"]``
MAX_SHEET_NAMES = 200

_SPECIALS = {f"{TEXT}s": " ", f"{TEXT}tab": "\t", f"{TEXT}line-break": "\n"}
_PARAGRAPHS = (f"{TEXT}p", f"{TEXT}h")
#: annotations (comments) and change-tracking remnants are not the document's text
_SKIP = (f"{OFFICE}annotation", f"{TEXT}tracked-changes")
_SHEET, _ROW, _PAGE = f"{TABLE}table", f"{TABLE}table-row", f"{DRAW}page"
_CELLS = (f"{TABLE}table-cell", f"{TABLE}covered-table-cell")


def _paragraph_text(element: Element) -> str:
    return mixed_text(element, _SPECIALS, breaks=_PARAGRAPHS, skip=_SKIP)


def _row_text(row: Element) -> str:
    """The cells of one spreadsheet row, tab-separated (repeated cells are not expanded)."""
    cells = []
    for cell in row:
        if cell.tag in _CELLS:
            paragraphs = [_paragraph_text(p) for p in cell if p.tag in _PARAGRAPHS]
            cells.append(" ".join(paragraphs))
    return "\t".join(cells).rstrip("\t")


def _read_content(
    package: SafeZip, content_type: str, sink: TextSink, deadline: Deadline
) -> tuple[int, list[str]]:
    """Add the text of ``content.xml`` to ``sink``; returns the sheet or slide count and the
    sheet names."""
    spreadsheet = content_type.endswith(".spreadsheet")
    presentation = content_type.endswith(".presentation")
    blocks = frozenset({_ROW}) if spreadsheet else frozenset(_PARAGRAPHS)
    marks = frozenset({_SHEET if spreadsheet else _PAGE})
    count, names = 0, []
    with package.stream("content.xml") as source:
        for event, element in stream_blocks(source, "content.xml", blocks, marks):
            deadline.check("content.xml")
            if event == BLOCK:
                if sink.full:
                    continue  # keep counting sheets and slides

                line = _row_text(element) if spreadsheet else _paragraph_text(element)
                if line.strip():
                    sink.add(line + "\n")
                continue
            if count:
                sink.add("\f")
            count += 1
            if spreadsheet:
                names.append(element.get(f"{TABLE}name", ""))
                sink.add(names[-1] + "\n")
    return (count if (spreadsheet or presentation) else 0), names


def _meta(package: SafeZip) -> dict[str, Any]:
    """Title, author, dates, language and statistics from ``meta.xml``."""
    data = package.read_optional("meta.xml")
    if data is None:
        return {}
    root = parse(data, "meta.xml")
    found: dict[str, Any] = {
        "title": field(root, f"{DC}title"),
        "author": field(root, f"{META}initial-creator") or field(root, f"{DC}creator"),
        "last_modified_by": field(root, f"{DC}creator"),
        "subject": field(root, f"{DC}subject"),
        "description": field(root, f"{DC}description"),
        "document_language": field(root, f"{DC}language"),
        "application": field(root, f"{META}generator"),
        "created": iso_date(field(root, f"{META}creation-date")),
        "modified": iso_date(field(root, f"{DC}date")),
    }
    statistic = root.find(f".//{META}document-statistic")
    if statistic is not None:
        pages = statistic.get(f"{META}page-count", "")
        if pages.isdigit():
            found["pages"] = int(pages)
    return {key: value for key, value in found.items() if value}


def extract_odf(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    """Extract an OpenDocument text, spreadsheet or presentation.

    Text: paragraphs and headings; spreadsheet: one tab-separated line per row, each sheet
    starting with its name; presentation: slides separated by form feeds.  ``pages`` is the sheet
    or slide count, or the page count ``meta.xml`` saved for text documents.

    Raises ``HostileFile`` (zip bomb, entity attack), ``CorruptFile`` (no ``content.xml`` or not
    a readable zip), ``TooManyPages`` and ``ExtractionTimeout``.
    """
    deadline = Deadline(limits)
    sink = TextSink(limits)
    with SafeZip.open(path, limits) as package:
        if "content.xml" not in package:
            raise CorruptFile("no content.xml in the OpenDocument package")
        count, names = _read_content(package, content_type, sink, deadline)
        metadata = _meta(package)
    if names:
        metadata["sheets"] = names[:MAX_SHEET_NAMES]
    if count > limits.max_pages:
        raise TooManyPages(f"{count} sheets or slides, limit {limits.max_pages}", pages=count)
    extraction = Extraction(content_type=content_type, text=sink.text(), truncated=sink.truncated)
    extraction.title = metadata.pop("title", None)
    extraction.author = metadata.pop("author", None)
    saved_pages = metadata.pop("pages", None)
    extraction.pages = count or saved_pages
    extraction.metadata = metadata
    return extraction
