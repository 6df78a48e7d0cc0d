"""Office Open XML (docx, xlsx, pptx and their macro-enabled and template variants).

The XML parts are read straight from the package through ``SafeZip`` (zip bomb limits) and
defusedxml (entity attacks).  The package's relationships decide which parts are read and in
which order; ``docProps/core.xml`` and ``docProps/app.xml`` give title, author, dates and counts.
The word, sheet and slide parts themselves are read by ``extractors.ooxml_parts``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from extractors import ooxml_parts
from extractors.base import Extraction, Limits
from extractors.budget import Deadline, TextSink
from extractors.safezip import SafeZip
from extractors.xmlparts import field, iso_date, parse
from pipeline.errors import CorruptFile, TooManyPages

logger = logging.getLogger(__name__)

OFFICE_DOCUMENT = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
)
CORE = "http://schemas.openxmlformats.org/package/2006/metadata/core-properties"
EXTENDED = "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"

#: main part of each kind when ``_rels/.rels`` does not name one
_DEFAULT_MAIN = ("word/document.xml", "xl/workbook.xml", "ppt/presentation.xml")
#: core properties kept in ``metadata`` besides title and author
_CORE_FIELDS = (
    (f"{{{DC}}}subject", "subject"),
    (f"{{{CORE}}}keywords", "keywords"),
    (f"{{{DC}}}description", "description"),
    (f"{{{CORE}}}lastModifiedBy", "last_modified_by"),
    (f"{{{DC}}}language", "document_language"),
)
_APP_FIELDS = (("Application", "application"), ("Company", "company"))


def _main_part(package: ooxml_parts.Package) -> str:
    """The office document part named by the package relationships (or the usual name)."""
    for _, rel_type, target in package.relationships(""):
        if rel_type == OFFICE_DOCUMENT and target in package.zip:
            return target
    for main in _DEFAULT_MAIN:
        if main in package.zip:
            return main
    raise CorruptFile("no main document part (word/, xl/ or ppt/) in the package")


def core_properties(package: SafeZip) -> dict[str, Any]:
    """Title, author, dates and the other core properties found in ``docProps/core.xml``."""
    data = package.read_optional("docProps/core.xml")
    if data is None:
        return {}
    root = parse(data, "docProps/core.xml")
    found: dict[str, Any] = {
        "title": field(root, f"{{{DC}}}title"),
        "author": field(root, f"{{{DC}}}creator"),
    }
    for tag, key in _CORE_FIELDS:
        found[key] = field(root, tag)
    for tag, key in ((f"{{{DCTERMS}}}created", "created"), (f"{{{DCTERMS}}}modified", "modified")):
        raw = field(root, tag)
        found[key] = iso_date(raw)
        if raw and not found[key]:
            found[f"{key}_raw"] = raw
    return {key: value for key, value in found.items() if value}


def app_properties(package: SafeZip) -> dict[str, Any]:
    """Application, company and the page/slide counts the application saved (``app.xml``)."""
    data = package.read_optional("docProps/app.xml")
    if data is None:
        return {}
    root = parse(data, "docProps/app.xml")
    found: dict[str, Any] = {}
    for name, key in _APP_FIELDS:
        value = field(root, f"{{{EXTENDED}}}{name}")
        if value:
            found[key] = value
    for name in ("Pages", "Slides", "Words"):
        value = field(root, f"{{{EXTENDED}}}{name}")
        if value and value.isdigit() and int(value):  # 0 means "not counted" (templates)
            found[name.lower()] = int(value)
    return found


def extract_ooxml(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    """Extract text and metadata from a docx/xlsx/pptx (or docm/xlsm/pptm, templates).

    Word: paragraphs of the body, then headers, footers, footnotes, endnotes and comments;
    Excel: one tab-separated line per row, sheets separated by form feeds, shared and inline
    strings resolved; PowerPoint: slides in presentation order (with their notes), separated by
    form feeds.  ``pages`` is the sheet or slide count (Word: the count ``app.xml`` saved).

    Raises ``HostileFile`` (zip bomb, entity attack), ``CorruptFile`` (not a readable package),
    ``TooManyPages`` (sheets or slides above ``limits.max_pages``) and ``ExtractionTimeout``.
    """
    deadline = Deadline(limits)
    sink = TextSink(limits)
    with SafeZip.open(path, limits) as package:
        parts = ooxml_parts.Package(package, deadline, sink)
        main = _main_part(parts)
        kind = main.split("/", 1)[0]
        reader = {
            "word": ooxml_parts.read_word,
            "xl": ooxml_parts.read_workbook,
            "ppt": ooxml_parts.read_presentation,
        }.get(kind)
        if reader is None:
            raise CorruptFile(f"unknown main part {main}")
        counts = reader(parts, main)
        if counts.pages is not None and counts.pages > limits.max_pages:
            raise TooManyPages(
                f"{counts.pages} sheets or slides, limit {limits.max_pages}",
                pages=counts.pages,
                max_pages=limits.max_pages,
            )
        metadata: dict[str, Any] = {**app_properties(package), **core_properties(package)}
        metadata.update(counts.metadata)
        if any(name.lower().endswith("vbaproject.bin") for name in package.names):
            metadata["macros"] = True
    extraction = Extraction(content_type=content_type, text=sink.text(), truncated=sink.truncated)
    extraction.title = metadata.pop("title", None)
    extraction.author = metadata.pop("author", None)
    pages = counts.pages if counts.pages is not None else metadata.get("pages")
    metadata.pop("pages", None)
    extraction.pages = pages
    extraction.metadata = metadata
    return extraction
